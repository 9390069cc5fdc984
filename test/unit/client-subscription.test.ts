import { Subscription, type SubscribeOptions } from '@bondx/client';
import { describe, expect, it } from 'vitest';
import type { ClientMessage, Envelope, SubscribeMessage } from '../../src/protocol/messages.js';

/**
 * The SDK's resume and gap logic against a scripted server: the envelopes a gateway could send, in the
 * orders a reconnect, a WebSocket path's own subscription or a lost notification produce them. The
 * application must see each seq once, in order, and the SDK must ask for exactly what it is missing.
 */

const TOPIC = 'trading.u1';
const ORDER = { order_id: 'o1', isin: 'IN0020230085', side: 'buy', price: 99.5, quantity: 100, filled_quantity: 0, status: 'accepted', reason: null, updated_at: 't' };

function scripted(topic = TOPIC, options: SubscribeOptions = {}) {
  const sent: ClientMessage[] = [];
  const sub = new Subscription(topic, topic.startsWith('prices.') ? 'prices' : 'trading', options, { send: (m) => sent.push(m) > 0, retryLater: () => undefined, remove: () => undefined }, (err) => {
    throw err;
  });
  const seen: number[] = [];
  sub.on('delta', (env) => seen.push(env.seq));
  const first = sub.subscribeMessage();
  sent.push(first); // what the connection sends on open
  const lastSubscribe = () => sent.filter((m): m is SubscribeMessage => m.type === 'subscribe').at(-1);
  return { sub, sent, seen, first, lastSubscribe };
}

const snapshot = (seq: number, epoch: string, correlation: string | null, payload: Record<string, unknown> = { user_id: 'u1', open: {}, recent: [], updated_at: null }, meta = {}): Envelope =>
  ({ type: 'snapshot', topic: TOPIC, seq, ts: 't', payload, meta: { epoch, ...meta }, correlation_id: correlation }) as Envelope;
const delta = (seq: number, topic = TOPIC): Envelope =>
  ({ type: 'delta', topic, seq, ts: 't', payload: { kind: 'order', event: 'order.accepted', order: { ...ORDER, order_id: `o${seq}` } }, meta: {}, correlation_id: `e${seq}` }) as Envelope;
const ack = (correlation: string | undefined): Envelope => ({ type: 'ack', topic: TOPIC, seq: null, ts: 't', payload: {}, meta: {}, correlation_id: correlation ?? null });

describe('Subscription (scripted server)', () => {
  it('drops duplicates, resumes on a gap from what it holds, and takes only the contiguous next seq until answered', () => {
    const { sub, seen, first, lastSubscribe } = scripted();
    sub.receive(snapshot(10, 'E1', first.correlation_id as string));
    sub.receive(ack(first.correlation_id));
    for (const seq of [11, 12, 12, 11, 13]) sub.receive(delta(seq));
    expect(seen).toEqual([11, 12, 13]);
    // 14 and 15 were lost: 16 is a gap, so the SDK resumes from 13 in its epoch.
    sub.receive(delta(16));
    expect(lastSubscribe()).toMatchObject({ resume_from_seq: 13, epoch: 'E1' });
    sub.receive(delta(17)); // still live from before the resume: not contiguous, dropped
    for (const seq of [14, 15, 16, 17]) sub.receive(delta(seq)); // the resume's catch-up
    sub.receive(ack(lastSubscribe()?.correlation_id));
    sub.receive(delta(17)); // and the room's copy
    sub.receive(delta(18));
    expect(seen).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
    expect(sub.seq).toBe(18);
    expect(Object.keys((sub.state as { open: object }).open)).toHaveLength(8);
  });

  it('a heartbeat head that stays ahead for two heartbeats is a gap; one that is merely in flight is not', () => {
    const { sub, first, lastSubscribe } = scripted();
    sub.receive(snapshot(5, 'E1', first.correlation_id as string));
    sub.receive(ack(first.correlation_id));
    sub.heartbeat(6);
    sub.receive(delta(6)); // it was in flight
    sub.heartbeat(7);
    expect(lastSubscribe()).toBe(first);
    sub.heartbeat(7); // seq 7 never came
    expect(lastSubscribe()).toMatchObject({ resume_from_seq: 6, epoch: 'E1' });
  });

  it('while its subscribe is outstanding, another subscription’s snapshot in another epoch stops it from taking deltas', () => {
    const { sub, seen, first } = scripted();
    sub.receive(snapshot(3, 'E1', first.correlation_id as string));
    sub.receive(ack(first.correlation_id));
    sub.detached(); // the connection dropped; on the next one it resumes from 3
    const resume = sub.subscribeMessage();
    expect(resume).toMatchObject({ resume_from_seq: 3, epoch: 'E1' });
    // The WebSocket path's own subscription re-synced into epoch E2, where seq 4 is another entry.
    sub.receive(snapshot(3, 'E2', null));
    sub.receive(delta(4));
    expect(seen).toEqual([]);
    // Our resume is answered with a re-sync snapshot of E2: reported, and the state replaced.
    const resyncs: unknown[] = [];
    sub.on('resync', (env) => resyncs.push(env.meta));
    sub.receive(snapshot(4, 'E2', resume.correlation_id as string, { user_id: 'u1', open: {}, recent: [], updated_at: 'x' }, { resync: true }));
    sub.receive(delta(5));
    expect(resyncs).toEqual([{ epoch: 'E2', resync: true }]);
    expect(seen).toEqual([5]);
    expect(sub.epoch).toBe('E2');
  });

  it('a seq-0 snapshot starts from the initial state; a filtered prices subscription takes seq jumps and ignores heads', () => {
    const isin = 'IN0020230085';
    const { sub, seen, first, lastSubscribe } = scripted(`prices.${isin}`, { subtopics: { levels: 'L1', trades: false } });
    sub.receive({ ...snapshot(0, '', first.correlation_id as string, {}), topic: `prices.${isin}` });
    expect(sub.state).toMatchObject({ isin, l1: null, trades: [] });
    sub.receive(ack(first.correlation_id));
    const l1 = (seq: number): Envelope => ({ ...delta(seq, `prices.${isin}`), payload: { kind: 'l1', bid: 99, ask: 99.1, bid_size: 1, ask_size: 1, bid_yield: null, ask_yield: null, mid: 99.05, spread: 0.1, ts: `t${seq}` } });
    sub.receive(l1(1));
    sub.receive(l1(4)); // 2 and 3 were L2 or trades, filtered out by the server
    sub.heartbeat(9);
    sub.heartbeat(9);
    expect(seen).toEqual([1, 4]);
    expect(lastSubscribe()).toBe(first);
    expect(sub.state).toMatchObject({ l1: { ts: 't4' }, updated_at: 't4' });
  });
});
