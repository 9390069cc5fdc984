import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connect, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';
import { SeqChecker } from '../support/seq-checker.js';

const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020192905'];
const TOPICS = ISINS.map((isin) => `prices.${isin}`);
const CLIENTS = 30;
const EVENTS = 1500;

let system: Awaited<ReturnType<typeof startTestSystem>>;

beforeAll(async () => {
  system = await startTestSystem();
});
afterAll(async () => system.close());

/** Every other client asks for batches, so both delivery paths are exercised. */
const batching = (n: number) => (n % 2 === 0 ? { batch_size: 25 } : {});

/** A deterministic PRNG, so a failure reproduces. */
function prng(seed: number): () => number {
  return () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

it('every client sees every seq exactly once, in order, while subscribing, dropping and resuming under concurrent publishing', async () => {
  const random = prng(42);
  const token = system.token('loadtester');
  let publishing = true;

  // Publisher: interleaves events across topics, yielding to the event loop so clients act meanwhile.
  const publisher = (async () => {
    for (let i = 0; i < EVENTS; i++) {
      await system.ingest.submit(quote(ISINS[i % ISINS.length] as string, 99 + random(), 99.2 + random()), 'test');
      if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    }
    publishing = false;
  })();

  const checkers = Array.from({ length: CLIENTS }, () => new SeqChecker());
  let reconnects = 0;
  const clients = checkers.map(async (checker, n) => {
    // Each client starts at a different moment and subscribes to 1-3 topics.
    await sleep(random() * 200);
    const topics = TOPICS.slice(0, 1 + (n % TOPICS.length));
    let socket: Socket | undefined;
    while (publishing) {
      socket = await connect(system.server.url, '/market', token);
      checker.attach(socket);
      await Promise.all(topics.map((topic) => request(socket as Socket, 'subscribe', { ...checker.resumeRequest(topic), ...batching(n) })));
      await sleep(20 + random() * 120);
      if (!publishing) break;
      socket.close(); // drop mid-stream, at a random point
      reconnects++;
      socket = undefined;
    }
    if (!socket) {
      socket = await connect(system.server.url, '/market', token);
      checker.attach(socket);
      await Promise.all(topics.map((topic) => request(socket as Socket, 'subscribe', { ...checker.resumeRequest(topic), ...batching(n) })));
    }
    return { socket, topics };
  });

  await publisher;
  const connected = await Promise.all(clients);
  const heads = new Map((await system.backends.store.topics()).map((t) => [t.topic, t.headSeq]));
  await waitFor(() => connected.every(({ topics }, n) => topics.every((t) => checkers[n]?.last.get(t) === heads.get(t))), 10_000, 'all clients at head');
  for (const { socket } of connected) socket.close();

  const violations = checkers.flatMap((c) => c.violations);
  expect(violations).toEqual([]);
  expect(checkers.reduce((n, c) => n + c.resyncs, 0)).toBe(0);
  expect(reconnects).toBeGreaterThan(CLIENTS);
  expect(checkers.reduce((n, c) => n + c.batches, 0)).toBeGreaterThan(0);
  expect(heads.get(TOPICS[0] as string)).toBe(EVENTS / ISINS.length);
  console.log(`resume-under-load: ${CLIENTS} clients, ${reconnects} drops+resumes, ${checkers.reduce((n, c) => n + c.received, 0)} entries checked`);
});
