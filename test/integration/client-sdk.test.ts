import { BondxClient, type ConnectionState, type PricesState, type Subscription } from '@bondx/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import type { JsonObject } from '../../src/domain/json.js';
import type { TopicKind } from '../../src/domain/topics.js';
import { TRANSPORTS } from '../support/clients.js';
import { book, eventId, ladder, quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * @bondx/client against a real gateway (in-process system, memory store), on both transports: what the
 * application sees is the server's sequence exactly once and in order, and `sub.state` is the server's
 * snapshot, through operator disconnects, a topic reset, a corrupted local book and token expiry.
 */

let system: TestSystem;
const clients: BondxClient[] = [];

beforeAll(async () => {
  // Heartbeats every second, so a gap on a quiet topic is noticed within the test's time.
  system = await startTestSystem({ WS_HEARTBEAT_INTERVAL: '1', JWT_EXPIRY_GRACE: '0' });
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await system.close();
});

function client(user: string, transport: (typeof TRANSPORTS)[number], extra: Partial<ConstructorParameters<typeof BondxClient>[0]> = {}): BondxClient {
  const c = new BondxClient({ url: system.server.url, token: system.token(user), transport, backoff: { initialMs: 20, maxMs: 200 }, ...extra });
  clients.push(c);
  return c;
}

/** Every seq the application saw, and the snapshots and re-syncs, in order. */
function record<K extends TopicKind>(sub: Subscription<K>) {
  const log = { seqs: [] as number[], snapshots: [] as number[], resyncs: [] as JsonObject[] };
  sub.on('snapshot', (env) => log.snapshots.push(env.seq));
  sub.on('resync', (env) => {
    log.resyncs.push(env.meta);
    log.seqs.length = 0; // a replaced state starts a new run of seqs
    log.snapshots.push(env.seq);
  });
  sub.on('delta', (env) => log.seqs.push(env.seq));
  return log;
}

const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020220037', 'IN0020230077', 'IN0020230093'];

/** A mixed stream of price events: quotes, both sides of the book (deep enough to push levels out), trades. */
function priceEvents(isin: string, n: number, offset = 0): DomainEvent[] {
  return Array.from({ length: n }, (_, k): DomainEvent => {
    const i = k + offset;
    if (i % 3 === 0) return quote(isin, 99 + (i % 50) / 100, 99.6 + (i % 50) / 100) as DomainEvent;
    if (i % 3 === 1) return book(isin, i % 2 ? 'bid' : 'ask', ladder(i % 2 ? 'bid' : 'ask', 3 + (i % 25), i)) as DomainEvent;
    return { event_id: eventId('t'), type: 'trade', ts: new Date().toISOString(), isin, trade_id: `T-${isin}-${i}`, price: 99.5, size: 1_000 + i } as DomainEvent;
  });
}

async function publish(events: DomainEvent[]): Promise<void> {
  for (const e of events) await system.ingest.submit(e as unknown as Record<string, unknown>, 'test');
}

async function serverState(topic: string): Promise<{ seq: number; state: JsonObject }> {
  const snap = await system.backends.store.snapshot(topic);
  if (!snap) throw new Error(`no snapshot of ${topic}`);
  return { seq: snap.seq, state: snap.state };
}

/** Waits until the subscription holds the server's head, then checks its state is the server's snapshot. */
async function caughtUp<K extends TopicKind>(sub: Subscription<K>, what: string): Promise<void> {
  const server = await serverState(sub.topic);
  await waitFor(() => sub.seq === server.seq, 10_000, () => `${what}: seq ${sub.seq} of ${server.seq}`);
  expect(sub.state).toEqual(server.state);
}

function contiguous(seqs: number[], from: number, to: number): void {
  expect(seqs).toEqual(Array.from({ length: to - from + 1 }, (_, i) => from + i));
}

describe.each(TRANSPORTS)('@bondx/client over %s', (transport) => {
  const isin = (i: number) => ISINS[(transport === 'socketio' ? 0 : 2) + i] as string;

  it('gets a snapshot, then every delta applied: its state is the server’s after N events, batches unpacked', async () => {
    const topic = `prices.${isin(0)}`;
    await publish(priceEvents(isin(0), 10));
    const c = client(`sdk-basic-${transport}`, transport);
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    const sub = c.subscribe(topic, { batchSize: 20 });
    const log = record(sub);
    await waitFor(() => log.snapshots.length === 1, 5000, 'snapshot');
    const first = sub.seq as number;
    expect(first).toBeGreaterThanOrEqual(10);
    await publish(priceEvents(isin(0), 90, 10));
    await caughtUp(sub, 'live');
    contiguous(log.seqs, first + 1, sub.seq as number);
    expect(log.resyncs).toEqual([]);
    expect(states).toEqual(['live']);
    // The typed state: the local book is the server's, checksum and all.
    const state = sub.state as PricesState;
    expect(state.l2.bids.length).toBeGreaterThan(0);
  });

  it('a subscription from seq 0 starts from the reducers’ initial state and ends equal to the server’s', async () => {
    const user = `sdk-orders-${transport}`;
    const c = client(user, transport);
    const sub = c.subscribe(`trading.${user}`);
    await waitFor(() => sub.seq === 0, 5000, 'empty snapshot');
    expect(sub.state).toEqual({ user_id: user, open: {}, recent: [], updated_at: null });
    const order = (type: string, id: number, filled?: number): DomainEvent =>
      ({ event_id: eventId('o'), type, ts: new Date().toISOString(), user_id: user, order_id: `o${id}`, isin: isin(0), side: 'buy', price: 99.5, quantity: 100, ...(filled !== undefined ? { filled_quantity: filled } : {}) }) as DomainEvent;
    await publish(Array.from({ length: 20 }, (_, i) => [order('order.accepted', i), order(i % 2 ? 'order.filled' : 'order.partially_filled', i, 50)]).flat());
    await caughtUp(sub, 'orders');
  });

  it('cut by the server mid-stream (operator disconnect, repeatedly): resumes, every seq once, in order', async () => {
    const user = `sdk-cut-${transport}`;
    const topic = `prices.${isin(1)}`;
    await publish(priceEvents(isin(1), 5));
    const c = client(user, transport);
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    const sub = c.subscribe(topic);
    const log = record(sub);
    await waitFor(() => log.snapshots.length === 1, 5000, 'snapshot');
    const first = sub.seq as number;
    const publishing = publish(priceEvents(isin(1), 300, 5));
    const reconnects = () => states.filter((s) => s === 'reconnecting').length;
    const cuts = 4;
    for (let cut = 0; cut < cuts; cut++) {
      await waitFor(() => c.state === 'live', 5000, 'live again');
      await sleep(30);
      const res = await fetch(`${system.server.url}/api/v1/admin/disconnect?user=${user}`, { method: 'POST', headers: { authorization: `Bearer ${system.token('ops', 'operator')}` } });
      expect(((await res.json()) as { disconnected: number }).disconnected).toBe(1);
      await waitFor(() => reconnects() > cut, 5000, 'the client noticed the cut');
    }
    await publishing;
    // Live again, and still in step after the last resume.
    await waitFor(() => c.state === 'live', 5000, 'live after the last cut');
    await publish(priceEvents(isin(1), 20, 305));
    await caughtUp(sub, 'after the cuts');
    contiguous(log.seqs, first + 1, sub.seq as number);
    expect(log.resyncs).toEqual([]);
    expect(states).toEqual(['live', ...Array.from({ length: cuts }, () => ['reconnecting', 'live']).flat()]);
  });

  it('a topic reset is reported as a resync and replaces the state', async () => {
    const topic = `prices.${isin(2)}`;
    await publish(priceEvents(isin(2), 12));
    const c = client(`sdk-reset-${transport}`, transport);
    const sub = c.subscribe(topic);
    const log = record(sub);
    await waitFor(() => log.snapshots.length === 1, 5000, 'snapshot');
    const oldEpoch = sub.epoch;
    await system.backends.store.reset(topic);
    await publish(priceEvents(isin(2), 6, 100));
    await waitFor(() => log.resyncs.length > 0, 10_000, 'resync');
    expect(log.resyncs[0]).toMatchObject({ resync: true });
    expect(sub.epoch).not.toBe(oldEpoch);
    await caughtUp(sub, 'after the reset');
  });

  it('a local book that no longer matches the server’s checksum is re-synced from a fresh snapshot', async () => {
    const topic = `prices.${isin(0)}`;
    const c = client(`sdk-checksum-${transport}`, transport);
    const sub = c.subscribe(topic);
    const log = record(sub);
    await waitFor(() => log.snapshots.length === 1, 5000, 'snapshot');
    // Corrupt the local book (as a buggy application mutating state would): the next L2 delta exposes it.
    const state = sub.state as PricesState;
    state.l2.asks = [...state.l2.asks, { price: 150, size: 1 }].slice(-5);
    await publish([book(isin(0), 'bid', ladder('bid', 4, 1)) as DomainEvent]);
    await waitFor(() => log.resyncs.length === 1, 5000, 'checksum re-sync');
    expect(log.resyncs[0]).not.toHaveProperty('resync');
    await caughtUp(sub, 'after the re-sync');
    expect((sub.state as PricesState).l2.asks.some((l) => l.price === 150)).toBe(false);
  });

  it('refreshes its token before exp: the connection outlives the first token', async () => {
    const user = `sdk-refresh-${transport}`;
    let issued = 0;
    // 3 s tokens, refreshed 1.5 s before exp; the server's grace is 0, so a missed refresh closes the connection.
    const getToken = () => {
      issued++;
      return system.token(user, undefined, 3);
    };
    const c = client(user, transport, { token: undefined, getToken, refreshLeadMs: 1500 });
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    const states: ConnectionState[] = [];
    c.on('state', (s) => states.push(s));
    const sub = c.subscribe(`prices.${isin(1)}`);
    await waitFor(() => sub.seq !== null, 5000, 'snapshot');
    await sleep(7000);
    await publish([quote(isin(1), 98.1, 98.2) as DomainEvent]);
    await caughtUp(sub, 'after the first token expired');
    expect(issued).toBeGreaterThanOrEqual(3);
    expect(errors).toEqual([]);
    expect(states).toEqual(['live']);
  }, 20_000);
});
