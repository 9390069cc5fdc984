import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { JsonObject } from '../../src/domain/json.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { connect, openClient, request, TRANSPORTS } from '../support/clients.js';
import { eventId, quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor, within } from '../support/waits.js';
import { SeqChecker } from '../support/seq-checker.js';

/**
 * Flow control end to end: a client that stops reading fills its socket for real (ws.pause() stops
 * reading; the kernel buffers a few MB on loopback, then the server's own queue grows), and the
 * gateway's 50 ms backpressure check must react: SLOW_CONSUMER + close 4008 for never-drop topics,
 * one conflated snapshot for market data, and no cost to anyone else. Background mode is the same
 * pause / conflate path, asked for by the client.
 */

const ISIN_A = 'IN0020230085';
const ISIN_B = 'IN0020240019';
const ISIN_FILLER = 'IN0020192905';

const systems: TestSystem[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  for (const system of systems.splice(0)) await system.close();
});

async function system(env: Record<string, string>): Promise<TestSystem> {
  const started = await startTestSystem(env);
  systems.push(started);
  return started;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------------
// Events

const lastLevels = new Map<string, number[]>();

let books = 0;
/**
 * A book update that replaces one side's whole ladder: the previous 20 prices removed, 30 new ones
 * (the 20 best kept): a delta of 40 levels, ~1.4 KB, good for filling socket buffers fast.
 */
function book(isin: string): Record<string, unknown> {
  const n = ++books;
  const side = n % 2 === 0 ? 'bid' : 'ask';
  const base = 80 + ((n * 0.5) % 30);
  const prices = Array.from({ length: 30 }, (_, j) => Math.round((base + j * 0.01) * 1000) / 1000);
  const removed = (lastLevels.get(`${isin}:${side}`) ?? []).map((price) => ({ price, size: 0 }));
  lastLevels.set(`${isin}:${side}`, side === 'bid' ? prices.slice(-20) : prices.slice(0, 20));
  const levels = [...removed, ...prices.map((price, j) => ({ price, size: 1_000_000 + j }))];
  return { event_id: `b-${process.pid}-${n}`, type: 'book', ts: new Date().toISOString(), isin, side, levels };
}

/** An order event for `user` (a fresh order each time, rejected so the trading state stays bounded); ~800 B on the wire. */
function order(user: string): Record<string, unknown> {
  const id = eventId('o');
  return { event_id: id, type: 'order.rejected', ts: new Date().toISOString(), user_id: user, order_id: `ord-${id}`, isin: ISIN_A, side: 'buy', price: 100.25, quantity: 1_000_000, reason: 'limit check failed: '.padEnd(400, 'x') };
}

function breach(user: string): Record<string, unknown> {
  return { event_id: eventId('r'), type: 'risk.breach', ts: new Date().toISOString(), user_id: user, limit: 'dv01', value: 1.2e6, threshold: 1e6, severity: 'critical' };
}

async function publish(sys: TestSystem, event: Record<string, unknown>): Promise<void> {
  const outcome = await sys.ingest.submit(event, 'test');
  if (outcome.status !== 'applied') throw new Error(`event not applied: ${JSON.stringify(outcome)}`);
}

async function publishMany(sys: TestSystem, n: number, make: () => Record<string, unknown>): Promise<void> {
  for (let i = 0; i < n; i++) {
    await publish(sys, make());
    if (i % 25 === 24) await tick();
  }
}

async function head(sys: TestSystem, topic: string): Promise<number> {
  return (await sys.backends.store.topics()).find((t) => t.topic === topic)?.headSeq ?? 0;
}

/** The gateway's outbound queue (largest per stream), as the flow check sees it. */
const queued = (sys: TestSystem, stream: string) => sys.server.gateway.queueSizes().get(stream) ?? 0;

/**
 * Publishes `chunk` events at a time until `stalled()` holds once the event loop has turned: write
 * callbacks of frames the kernel took run on the next tick, so only a client that really stopped
 * reading keeps a queue. Returns how many events it took.
 */
async function fillUntil(sys: TestSystem, stalled: () => boolean, make: () => Record<string, unknown>, chunk = 50): Promise<number> {
  let published = 0;
  for (;;) {
    for (let i = 0; i < chunk; i++) await publish(sys, make());
    published += chunk;
    await tick();
    if (stalled()) return published;
    if (published > 60_000) throw new Error('the client never stalled');
  }
}

/**
 * Brings a paused client's queue on `stream` just over `limit`: fast to a third of it, then a few events
 * per 5 ms, so a 50 ms flow check sees it over the limit well before the hard limit (4x) would cut it
 * whatever it follows. Stops early when the client is gone (cut already).
 */
async function creepOver(sys: TestSystem, stream: string, limit: number, make: () => Record<string, unknown>): Promise<void> {
  const gone = () => sys.server.gateway.connectionCounts().by_stream[stream] === undefined;
  await fillUntil(sys, () => queued(sys, stream) > limit / 3 || gone(), make, 10);
  while (queued(sys, stream) <= limit && !gone()) {
    await publish(sys, make());
    await publish(sys, make());
    await sleep(5);
  }
}

async function counter(sys: TestSystem, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(sys.metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

// ---------------------------------------------------------------------------------------------
// A plain-WebSocket client that can stop reading

interface RawClient {
  ws: WebSocket;
  /** Every envelope, batches flattened, in arrival order. */
  received: Envelope[];
  /** Batch frames received. */
  batches: Envelope[];
  closed: Promise<{ code: number; reason: string }>;
  isClosed(): boolean;
  send(message: Record<string, unknown>): void;
}

/** Opens `/api/v1/ws/{path}` and waits for the acks of the path's default subscribes. */
async function openRaw(sys: TestSystem, path: string, user: string, opts: { acks: number; query?: string; headers?: Record<string, string> }): Promise<RawClient> {
  const url = `${sys.server.url.replace('http', 'ws')}/api/v1/ws/${path}?token=${encodeURIComponent(sys.token(user))}${opts.query ? `&${opts.query}` : ''}`;
  const ws = new WebSocket(url, { headers: opts.headers ?? {} });
  const received: Envelope[] = [];
  const batches: Envelope[] = [];
  let isClosed = false;
  ws.on('message', (data) => {
    const env = JSON.parse(data.toString()) as Envelope;
    if (env.type === 'batch') {
      batches.push(env);
      received.push(...(env.payload as unknown as Envelope[]));
    } else received.push(env);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => {
      isClosed = true;
      resolve({ code, reason: reason.toString() });
    }),
  );
  cleanups.push(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor(() => received.filter((e) => e.type === 'ack' || e.type === 'error').length >= opts.acks, 5000, `acks on ${path}`);
  const refused = received.find((e) => e.type === 'error');
  if (refused) throw new Error(`refused: ${JSON.stringify(refused)}`);
  return { ws, received, batches, closed, isClosed: () => isClosed, send: (message) => ws.send(JSON.stringify(message)) };
}

const ofTopic = (envs: Envelope[], topic: string, ...types: string[]) => envs.filter((e) => e.topic === topic && (types.length === 0 || types.includes(e.type)));
const seqsOf = (envs: Envelope[]) => envs.map((e) => e.seq as number);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

interface Conflated {
  from: number;
  to: number;
}

/**
 * Splits one topic's deliveries at the conflated snapshot and checks each side is contiguous:
 * snapshot S, deltas S+1…X, snapshot(conflated {X+1, T}) at T, deltas T+1…
 */
function splitAtConflation(envs: Envelope[], topic: string): { first: Envelope; before: number[]; conflated: Envelope; range: Conflated; after: number[] } {
  const stream = ofTopic(envs, topic, 'snapshot', 'delta');
  const snapshots = stream.filter((e) => e.type === 'snapshot');
  expect(snapshots.length, `${topic}: initial + conflated snapshot`).toBe(2);
  const [first, conflated] = snapshots as [Envelope, Envelope];
  expect(stream[0]).toBe(first);
  expect(first.meta.conflated).toBeUndefined();
  const split = stream.indexOf(conflated);
  const before = seqsOf(stream.slice(1, split));
  const after = seqsOf(stream.slice(split + 1));
  expect(stream.slice(1, split).every((e) => e.type === 'delta')).toBe(true);
  const firstSeq = first.seq as number;
  // Before the conflation: contiguous from the subscribe snapshot, no gap, no duplicate.
  expect(before).toEqual(range(firstSeq + 1, firstSeq + before.length));
  const marks = conflated.meta.conflated as unknown as Conflated;
  expect(marks).toEqual({ from: (before.at(-1) ?? firstSeq) + 1, to: conflated.seq });
  expect(marks.to).toBeGreaterThanOrEqual(marks.from);
  // After it: live deltas from to+1, contiguous.
  expect(after).toEqual(range(marks.to + 1, marks.to + after.length));
  return { first, before, conflated, range: marks, after };
}

// ---------------------------------------------------------------------------------------------

describe('flow control', () => {
  // Trading alone too: with portfolio.* beside it, a conflatable trading.* would still be cut for portfolio's sake.
  it.each([
    { follows: 'trading and portfolio', alone: false },
    { follows: 'trading alone', alone: true },
  ])('a client following $follows that stops reading gets SLOW_CONSUMER and close 4008, never a conflation, then resumes with every seq exactly once', async ({ alone }) => {
    const sys = await system({ WS_MAX_QUEUE_SIZE: '30' });
    const user = alone ? 'slowtrader-alone' : 'slowtrader';
    const topic = `trading.${user}`;
    await publishMany(sys, 5, () => order(user));

    const client = await openRaw(sys, `trading/${user}`, user, { acks: 2 });
    const snapshot = ofTopic(client.received, topic, 'snapshot')[0] as Envelope;
    expect(snapshot.seq).toBe(5);
    const epoch = String(snapshot.meta.epoch);
    const resumed = alone ? [topic] : [topic, `portfolio.${user}`];
    if (alone) {
      client.send({ type: 'unsubscribe', topic: `portfolio.${user}`, correlation_id: 'unsub' });
      await waitFor(() => client.received.some((e) => e.correlation_id === 'unsub'), 5000, 'unsubscribe ack');
      expect(client.received.find((e) => e.correlation_id === 'unsub')?.type).toBe('ack');
    }

    client.ws.pause();
    // Fill the kernel buffers (a few MB), until the gateway's own queue for this client passes the limit,
    // slowly enough that only the never-drop rule (not the hard limit) can cut it.
    const before = await head(sys, topic);
    await creepOver(sys, 'trading', 30, () => order(user));
    const published = (await head(sys, topic)) - before;
    // Three flow checks (50 ms each): the first one over the limit disconnects it.
    await sleep(150);
    // Published after the cut: must come back through the resume.
    await publishMany(sys, 200, () => order(user));
    expect(client.isClosed()).toBe(false); // still paused: nothing read yet
    client.ws.resume();
    const { code, reason } = (await within(client.closed, 10_000)) ?? { code: 0, reason: 'still open' };
    expect(code).toBe(4008);
    expect(reason).toBe('SLOW_CONSUMER');
    const errors = client.received.filter((e) => e.type === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'SLOW_CONSUMER', details: { limit: 30, queued: expect.any(Number) } });
    // The error is the last thing it got before the close, and nothing was conflated on the way.
    expect(client.received.at(-1)?.type).toBe('error');
    expect(client.received.filter((e) => e.type === 'snapshot' && e.meta.conflated !== undefined)).toEqual([]);
    expect(ofTopic(client.received, topic, 'snapshot')).toEqual([snapshot]);
    // Counted once, even though later flow checks still saw this connection while it closed.
    expect(await counter(sys, 'bondx_messages_dropped_total', { stream: 'trading', reason: 'slow_consumer_disconnect' })).toBe(1);

    const checker = new SeqChecker();
    for (const env of client.received) {
      if (env.type === 'snapshot') checker.onSnapshot(env);
      else if (env.type === 'delta' || env.type === 'alert') checker.onEntry(env);
    }
    expect(checker.violations).toEqual([]);
    const lastSeen = checker.last.get(topic) as number;
    const headSeq = await head(sys, topic);
    expect(lastSeen).toBeGreaterThan(5);
    expect(lastSeen).toBeLessThan(headSeq); // it really missed something

    // Reconnect where it left off (the topics it followed).
    const resume = resumed.map((t) => `${t}@${checker.last.get(t) ?? 0}@${checker.epochs.get(t) ?? epoch}`).join(',');
    const again = await openRaw(sys, `trading/${user}`, user, { acks: 2, query: `resume=${encodeURIComponent(resume)}` });
    await publishMany(sys, 10, () => order(user));
    const finalHead = await head(sys, topic);
    await waitFor(() => ofTopic(again.received, topic, 'delta').at(-1)?.seq === finalHead, 10_000, 'resumed client at head');
    expect(ofTopic(again.received, topic, 'snapshot')).toEqual([]); // a resume, not a re-sync
    for (const env of again.received) if (env.type === 'delta') checker.onEntry(env);
    expect(checker.violations).toEqual([]);
    const all = seqsOf(ofTopic([...client.received, ...again.received], topic, 'delta'));
    expect(all).toEqual(range(6, finalHead));
    console.log(`slow trader: cut after ${published} events (${lastSeen - 5} read before the cut), resumed ${finalHead - lastSeen} seqs up to ${finalHead}`);
  });

  it('a market client that stops reading gets one conflated snapshot for the skipped range, then live deltas', async () => {
    const sys = await system({ WS_MAX_QUEUE_SIZE: '40' });
    const topic = `prices.${ISIN_B}`;
    await publishMany(sys, 3, () => quote(ISIN_B));
    const client = await openRaw(sys, `market/${ISIN_B}`, 'viewer', { acks: 1 });
    client.ws.pause();

    let n = 0;
    await creepOver(sys, 'market', 40, () => (++n % 2 === 0 ? book(ISIN_B) : quote(ISIN_B)));
    await sleep(120);
    // Paused: more market data no longer reaches its queue.
    const stalledAt = queued(sys, 'market');
    let k = 0;
    await publishMany(sys, 100, () => (++k % 2 === 0 ? book(ISIN_B) : quote(ISIN_B)));
    await tick();
    expect(queued(sys, 'market')).toBe(stalledAt);
    expect(stalledAt).toBeLessThanOrEqual(40 * 4);
    const skippedHead = await head(sys, topic);

    client.ws.resume();
    await waitFor(() => ofTopic(client.received, topic, 'snapshot').length === 2, 10_000, 'conflated snapshot');
    // Market data only: conflated, never cut.
    expect(client.isClosed()).toBe(false);
    expect(client.received.filter((e) => e.type === 'error')).toEqual([]);
    const { before, conflated, range: marks } = splitAtConflation(client.received, topic);
    expect(marks.to).toBe(skippedHead);
    expect(marks.to - marks.from + 1).toBeGreaterThanOrEqual(100); // at least the 100 published while paused
    // The conflated snapshot is the store's state at that seq.
    const stored = await sys.backends.store.snapshot(topic);
    expect(stored?.seq).toBe(conflated.seq);
    expect(conflated.payload).toEqual(stored?.state);
    expect(conflated.meta.epoch).toBe(stored?.epoch);

    // Live again from to+1.
    await publishMany(sys, 5, () => quote(ISIN_B));
    await waitFor(() => ofTopic(client.received, topic, 'delta').at(-1)?.seq === marks.to + 5, 5000, 'live deltas after conflation');
    const { after } = splitAtConflation(client.received, topic);
    expect(after).toEqual(range(marks.to + 1, marks.to + 5));
    expect(await counter(sys, 'bondx_messages_dropped_total', { stream: 'market', reason: 'conflated' })).toBe(marks.to - marks.from + 1);
    console.log(`conflation: read ${before.length} deltas, skipped ${marks.from}..${marks.to} (${marks.to - marks.from + 1} seqs) into one snapshot`);
  });

  it('a stalled client does not slow the others', async () => {
    const sys = await system({ WS_MAX_QUEUE_SIZE: '50' });
    const topic = `prices.${ISIN_A}`;
    const HEALTHY = 20;
    const PER_PHASE = 400;
    const token = sys.token('healthy');
    await publish(sys, quote(ISIN_A));

    const publishedAt = new Map<string, number>();
    const healthy = await Promise.all(
      Array.from({ length: HEALTHY }, async () => {
        const socket = await connect(sys.server.url, '/market', token);
        cleanups.push(() => socket.close());
        const got = { socket, seqs: [] as number[], at: new Map<string, number>(), snapshot: 0 };
        socket.on('delta', (env: Envelope) => {
          got.at.set(env.correlation_id as string, performance.now());
          got.seqs.push(env.seq as number);
        });
        socket.on('snapshot', (env: Envelope) => (got.snapshot = env.seq as number));
        expect(await request(socket, 'subscribe', { topic })).toMatchObject({ type: 'ack' });
        return got;
      }),
    );

    /** Book updates at a steady ~1000/s; returns p50/p99 latency (publish -> receipt) over every healthy client. */
    const phase = async (): Promise<{ p50: number; p99: number }> => {
      const ids: string[] = [];
      for (let i = 0; i < PER_PHASE; i++) {
        const event = book(ISIN_A);
        const id = event.event_id as string;
        ids.push(id);
        publishedAt.set(id, performance.now());
        await publish(sys, event);
        if (i % 5 === 4) await sleep(5);
      }
      await waitFor(() => healthy.every((h) => ids.every((id) => h.at.has(id))), 15_000, 'every healthy client has the phase');
      const latencies = healthy.flatMap((h) => ids.map((id) => (h.at.get(id) as number) - (publishedAt.get(id) as number))).sort((a, b) => a - b);
      const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] as number;
      return { p50: pct(0.5), p99: pct(0.99) };
    };

    await phase(); // warm-up (JIT, socket buffers)
    const without = await phase();

    // The stalled client follows the same topic (and a filler one, used to fill its socket quickly).
    const stalled = await openRaw(sys, `market/${ISIN_FILLER}`, 'stalled', { acks: 1 });
    stalled.send({ type: 'subscribe', topic, correlation_id: 'stalled-sub' });
    await waitFor(() => stalled.received.some((e) => e.correlation_id === 'stalled-sub'), 5000, 'stalled subscribe');
    stalled.ws.pause();
    // Healthy clients do not follow the filler topic: the market queue is the stalled client's alone.
    const filler = await fillUntil(sys, () => queued(sys, 'market') > 0, () => book(ISIN_FILLER), 10);
    const withStalled = await phase();
    // Still stalled at the end (and still connected: market data is conflated, not cut).
    expect(queued(sys, 'market')).toBeGreaterThan(0);
    expect(stalled.isClosed()).toBe(false);

    // A second baseline once it is gone, so noise from elsewhere on the box hits both sides alike.
    stalled.ws.terminate();
    await waitFor(() => sys.server.gateway.connectionCounts().by_stream.market === HEALTHY, 5000, 'stalled client gone');
    const withoutAgain = await phase();

    const headSeq = await head(sys, topic);
    for (const h of healthy) expect(h.seqs).toEqual(range(h.snapshot + 1, headSeq));
    const fmt = (r: { p50: number; p99: number }) => `p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms`;
    console.log(
      `latency over ${HEALTHY} healthy socket.io clients x ${PER_PHASE} book deltas: without stalled client ${fmt(without)}; with ${fmt(withStalled)} (stalled after ${filler} filler events); without again ${fmt(withoutAgain)}`,
    );
    // Generous: a 2-core box is noisy. A client that made the others wait would add its whole stall.
    expect(withStalled.p99).toBeLessThan(Math.max(without.p99, withoutAgain.p99) + 100);
  });
});

describe.each(TRANSPORTS)('background mode over %s', (transport) => {
  it('suspends market data but not alerts; leaving it sends one conflated snapshot, then live deltas', async () => {
    const sys = await system({});
    const user = `mob-${transport}`;
    const prices = `prices.${ISIN_A}`;
    const alerts = `risk.${user}.alerts`;
    await publishMany(sys, 2, () => quote(ISIN_A));
    const client = await openClient(transport, sys.server.url, 'mobile', user, sys.token(user));
    cleanups.push(() => client.close());
    expect(await client.request('subscribe', { topic: prices })).toMatchObject({ type: 'ack' });
    await publishMany(sys, 3, () => quote(ISIN_A));
    await waitFor(() => ofTopic(client.received, prices, 'delta').length === 3, 5000, 'deltas before background');

    expect(await client.request('background_mode', { enabled: true })).toMatchObject({ type: 'ack', payload: { action: 'background_mode', enabled: true } });
    const mark = client.received.length;
    await publishMany(sys, 20, () => quote(ISIN_A));
    await publish(sys, breach(user));
    // The alert is sent after the quotes on the same connection: any leaked delta would be here by now.
    await waitFor(() => ofTopic(client.received, alerts, 'alert').length === 1, 5000, 'alert in background');
    expect(ofTopic(client.received.slice(mark), prices)).toEqual([]);
    expect(ofTopic(client.received, alerts, 'alert')[0]?.payload).toMatchObject({ kind: 'breach_alert', limit: 'dv01', severity: 'critical' });

    const frozen = await sys.backends.store.snapshot(prices);
    expect(frozen?.seq).toBe(25);
    expect(await client.request('background_mode', { enabled: false })).toMatchObject({ type: 'ack', payload: { enabled: false } });
    await publishMany(sys, 4, () => quote(ISIN_A));
    const headSeq = await head(sys, prices);
    await waitFor(() => ofTopic(client.received, prices, 'delta').at(-1)?.seq === headSeq, 5000, 'live deltas after background');
    const { before, conflated, range: marks, after } = splitAtConflation(client.received, prices);
    expect(before).toEqual([3, 4, 5]);
    expect(marks).toEqual({ from: 6, to: 25 });
    expect(after).toEqual([26, 27, 28, 29]);
    // The snapshot brings it to the state at seq 25 in one step.
    expect(conflated.payload).toEqual(frozen?.state);
    expect((conflated.payload as JsonObject).l1).toMatchObject({ ts: expect.any(String) });
  });

  it("keeps the user's own trading topic live, followed alone, while market data is suspended", async () => {
    const sys = await system({});
    const user = `bgtrader-${transport}`;
    const trading = `trading.${user}`;
    const prices = `prices.${ISIN_A}`;
    await publishMany(sys, 2, () => order(user));
    const client = await openClient(transport, sys.server.url, 'mobile', user, sys.token(user));
    cleanups.push(() => client.close());
    // Trading alone among the never-drop topics: nothing else to keep the connection's live path open.
    for (const topic of [`portfolio.${user}`, `risk.${user}.alerts`]) expect(await client.request('unsubscribe', { topic })).toMatchObject({ type: 'ack' });
    expect(await client.request('subscribe', { topic: prices })).toMatchObject({ type: 'ack' });

    expect(await client.request('background_mode', { enabled: true })).toMatchObject({ type: 'ack', payload: { enabled: true } });
    await publishMany(sys, 10, () => order(user));
    await publishMany(sys, 5, () => quote(ISIN_A));
    await publishMany(sys, 10, () => order(user));
    await waitFor(() => ofTopic(client.received, trading, 'delta').length === 20, 5000, 'trading deltas in background');
    expect(seqsOf(ofTopic(client.received, trading, 'delta'))).toEqual(range(3, 22));
    expect(ofTopic(client.received, prices, 'delta')).toEqual([]);

    // Leaving background mode conflates the market topic only: trading was never paused.
    expect(await client.request('background_mode', { enabled: false })).toMatchObject({ type: 'ack', payload: { enabled: false } });
    await waitFor(() => ofTopic(client.received, prices, 'snapshot').length === 2, 5000, 'conflated market snapshot');
    expect(ofTopic(client.received, trading, 'snapshot').map((e) => e.seq)).toEqual([2]);
    await publish(sys, order(user));
    await waitFor(() => ofTopic(client.received, trading, 'delta').at(-1)?.seq === 23, 5000, 'trading delta after background');
  });

  it('a paused subscription survives the last other subscriber of its topic leaving', async () => {
    const sys = await system({});
    const user = `keep-${transport}`;
    const prices = `prices.${ISIN_A}`;
    await publishMany(sys, 2, () => quote(ISIN_A));
    const client = await openClient(transport, sys.server.url, 'mobile', user, sys.token(user));
    cleanups.push(() => client.close());
    expect(await client.request('subscribe', { topic: prices })).toMatchObject({ type: 'ack' });
    expect(await client.request('background_mode', { enabled: true })).toMatchObject({ type: 'ack' });
    // Someone else follows the topic for a while, then leaves: the hub cleans up rooms without members.
    const other = await openClient(transport, sys.server.url, 'market', ISIN_A, sys.token('other'));
    await publishMany(sys, 3, () => quote(ISIN_A));
    await waitFor(() => ofTopic(other.received, prices, 'delta').length === 3, 5000, 'other client deltas');
    other.close();
    await waitFor(() => sys.server.gateway.connectionCounts().by_stream.market === undefined, 5000, 'other client gone');
    await publishMany(sys, 4, () => quote(ISIN_A));

    expect(await within(client.request('background_mode', { enabled: false }), 3000), 'background_mode off answered').toMatchObject({ type: 'ack' });
    await publishMany(sys, 2, () => quote(ISIN_A));
    await waitFor(() => ofTopic(client.received, prices, 'delta').at(-1)?.seq === 11, 5000, 'live deltas after resume');
    const { range: marks, after } = splitAtConflation(client.received, prices);
    expect(marks).toEqual({ from: 3, to: 9 });
    expect(after).toEqual([10, 11]);
  });

  it('x-background-mode: true at connect suspends market data from the start', async () => {
    const sys = await system({});
    const user = `hdr-${transport}`;
    const prices = `prices.${ISIN_A}`;
    const alerts = `risk.${user}.alerts`;
    await publishMany(sys, 2, () => quote(ISIN_A));
    const headers = { 'x-background-mode': 'true' };
    const client = await openClient(transport, sys.server.url, 'mobile', user, sys.token(user), headers);
    cleanups.push(() => client.close());
    expect(await client.request('subscribe', { topic: prices })).toMatchObject({ type: 'ack' });
    expect(ofTopic(client.received, prices, 'snapshot').map((e) => e.seq)).toEqual([2]);
    await publishMany(sys, 6, () => quote(ISIN_A));
    await publish(sys, breach(user));
    await waitFor(() => ofTopic(client.received, alerts, 'alert').length === 1, 5000, 'alert in background');
    expect(ofTopic(client.received, prices, 'delta')).toEqual([]);

    expect(await within(client.request('background_mode', { enabled: false }), 3000), 'background_mode off answered').toMatchObject({ type: 'ack' });
    await publishMany(sys, 2, () => quote(ISIN_A));
    await waitFor(() => ofTopic(client.received, prices, 'delta').at(-1)?.seq === 10, 5000, 'live deltas');
    const { range: marks, after, conflated } = splitAtConflation(client.received, prices);
    expect(marks).toEqual({ from: 3, to: 8 });
    expect(after).toEqual([9, 10]);
    expect(conflated.meta.epoch).toBe((await sys.backends.store.snapshot(prices))?.epoch);
  });
});


describe('batching across the conflation boundary', () => {
  it('batch_size 10: batches before and after one conflated snapshot, every seq in order, none twice', async () => {
    const sys = await system({});
    const user = 'batcher';
    const prices = `prices.${ISIN_A}`;
    const client = await openRaw(sys, `mobile/${user}`, user, { acks: 3 });
    client.send({ type: 'subscribe', topic: prices, batch_size: 10, correlation_id: 'sub' });
    await waitFor(() => client.received.some((e) => e.correlation_id === 'sub'), 5000, 'subscribe ack');
    await publishMany(sys, 25, () => quote(ISIN_A));
    // Straight into background mode: the room may still hold a partial batch, which must arrive before the pause.
    client.send({ type: 'background_mode', enabled: true, correlation_id: 'bg-on' });
    await waitFor(() => client.received.some((e) => e.correlation_id === 'bg-on'), 5000, 'background on');
    await publishMany(sys, 30, () => quote(ISIN_A));

    // Leave background mode while events keep flowing: the conflation snapshot races live entries.
    let flowing = true;
    const publisher = (async () => {
      while (flowing) {
        await publish(sys, quote(ISIN_A));
        await sleep(1);
      }
    })();
    await sleep(20);
    client.send({ type: 'background_mode', enabled: false, correlation_id: 'bg-off' });
    await waitFor(() => client.received.some((e) => e.correlation_id === 'bg-off'), 5000, 'background off');
    await sleep(60);
    flowing = false;
    await publisher;
    const headSeq = await head(sys, prices);
    await waitFor(() => ofTopic(client.received, prices, 'delta').at(-1)?.seq === headSeq, 5000, 'all live deltas');

    const { before, range: marks, after } = splitAtConflation(client.received, prices);
    expect(before).toEqual(range(1, 25));
    expect(marks.from).toBe(26);
    expect(marks.to).toBeGreaterThanOrEqual(55);
    expect(after.at(-1)).toBe(headSeq);
    expect(after.length).toBeGreaterThan(0);
    // Deltas came in batch frames (at most 10 each, contiguous inside), not one by one.
    const priceBatches = client.batches.filter((b) => b.topic === prices);
    expect(priceBatches.length).toBeGreaterThanOrEqual(3);
    for (const b of priceBatches) {
      const inner = seqsOf(b.payload as unknown as Envelope[]);
      expect(inner.length).toBeLessThanOrEqual(10);
      expect(inner).toEqual(range(inner[0] as number, (inner[0] as number) + inner.length - 1));
      expect(b.meta).toMatchObject({ count: inner.length, first_seq: inner[0], last_seq: inner.at(-1) });
    }
    expect(priceBatches.some((b) => (b.payload as unknown as Envelope[]).length === 10)).toBe(true);
  });
});
