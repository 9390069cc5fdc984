import { randomBytes } from 'node:crypto';
import { BondxClient, type Subscription } from '@bondx/client';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TopicKind } from '../../src/domain/topics.js';
import { TRANSPORTS } from '../support/clients.js';
import { book, ladder, quote } from '../support/events.js';
import { startGateway, stopAll, type GatewayProcess } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, TEST_SECRET, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * @bondx/client across a gateway restart in Redis mode: the SDK's gateway is a `bondx gateway` process on
 * Redis, killed (SIGKILL, no goodbye) and restarted on the same port while an in-process system keeps
 * committing events to the same Redis. Every subscription's delivered seqs are contiguous (resumed, not
 * re-synced) and its final state equals a fresh snapshot from the store.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the SDK restart test');
const PREFIX = `sdk-restart-${randomBytes(4).toString('hex')}`;
const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020220037'];
const TOPICS = ISINS.map((isin) => `prices.${isin}`);

let redis: Redis;
let writer: TestSystem;
let gateway: GatewayProcess;
let env: Record<string, string>;
const clients: BondxClient[] = [];

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  writer = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
  env = { REDIS_URL, REDIS_PREFIX: PREFIX, JWT_SECRET: TEST_SECRET, SIMULATOR: 'false', KAFKA_BROKERS: '' };
  gateway = await startGateway(env);
  for (const [i, isin] of ISINS.entries()) await writer.ingest.submit(quote(isin, 99 + i / 100, 99.6), 'test');
}, 60_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await stopAll();
  await writer.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

/** Quotes and both sides of the book, round robin over the instruments, `pauseMs` apart. */
async function publish(count: number, from: number, pauseMs = 0): Promise<void> {
  for (let n = from; n < from + count; n++) {
    if (pauseMs > 0) await sleep(pauseMs);
    const isin = ISINS[n % ISINS.length] as string;
    const side = n % 2 ? 'bid' : 'ask';
    await writer.ingest.submit(n % 3 === 0 ? quote(isin, 99 + (n % 40) / 100, 99.5 + (n % 40) / 100) : book(isin, side, ladder(side, 3 + (n % 10), n)), 'test');
  }
}

function recordSeqs<K extends TopicKind>(sub: Subscription<K>): { seqs: number[]; resyncs: number } {
  const log = { seqs: [] as number[], resyncs: 0 };
  sub.on('resync', () => log.resyncs++);
  sub.on('delta', (env) => log.seqs.push(env.seq));
  return log;
}

describe.each(TRANSPORTS)('@bondx/client over %s, its gateway process restarted', (transport) => {
  it('resumes every subscription: seqs contiguous, final state equal to a fresh snapshot', async () => {
    const client = new BondxClient({ url: gateway.url, token: writer.token(`sdk-restart-${transport}`), transport, backoff: { initialMs: 50, maxMs: 300 } });
    clients.push(client);
    const subs = TOPICS.map((topic) => client.subscribe(topic));
    const logs = subs.map(recordSeqs);
    await waitFor(() => subs.every((s) => s.seq !== null), 10_000, 'snapshots');
    const firsts = subs.map((s) => s.seq as number);
    // ~3 s of events: before the kill, while the gateway is down and starting, and after it is back.
    const publishing = publish(300, 0, 10);
    await sleep(300);
    await gateway.kill('SIGKILL');
    const atKill = subs.map((s) => s.seq as number);
    await waitFor(() => client.state === 'reconnecting', 5000, 'the client noticed the kill');
    gateway = await startGateway({ ...env, PORT: new URL(gateway.url).port });
    await waitFor(() => client.state === 'live', 10_000, 'live again');
    await publishing;
    await publish(30, 300);
    for (const [i, sub] of subs.entries()) {
      const snap = await writer.backends.store.snapshot(sub.topic);
      if (!snap) throw new Error(`no snapshot of ${sub.topic}`);
      await waitFor(() => sub.seq === snap.seq, 10_000, () => `${sub.topic}: seq ${sub.seq} of ${snap.seq}`);
      expect(sub.state).toEqual(snap.state);
      const first = firsts[i] as number;
      expect(logs[i]?.seqs).toEqual(Array.from({ length: snap.seq - first }, (_, k) => first + 1 + k));
      expect(logs[i]?.resyncs).toBe(0);
      // The restart cost it entries, which the resume delivered.
      expect(snap.seq).toBeGreaterThan((atKill[i] as number) + 10);
    }
    await client.close();
  }, 60_000);
});
