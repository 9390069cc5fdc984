import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/domain/events.js';
import { SYSTEM_ALERTS_TOPIC, topicOf, type Stream } from '../../src/domain/topics.js';
import type { Envelope, ErrorEnvelope } from '../../src/protocol/messages.js';
import { MarketGenerator } from '../../src/simulator/generator.js';
import { seededRandom } from '../../src/simulator/random.js';
import { openClient, RefusedError, TRANSPORTS, type TestClient, type Transport } from '../support/clients.js';
import { quote } from '../support/events.js';
import { checkedTypes, SERVER_ENVELOPE_TYPES } from '../support/server-schemas.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * The server -> client contract, driven whole on both transports: every envelope type (snapshot plain,
 * re-synced and conflated; delta and alert of every payload kind; batch; ack of every action; pong;
 * heartbeat; error replies, the closing error and a refusal) is produced for real, and the kit's guard
 * (test/support/server-schemas.ts) validates each against schemas/server as it arrives. The test then
 * checks the guard really saw every type the contract has, so the coverage can not silently shrink.
 */

const USER = 'contract-user';
/** Every payload kind a delta or alert can carry (schemas/server prices/auctions/trading/risk.json). */
const PAYLOAD_KINDS = ['l1', 'l2', 'trade', 'auction_state', 'auction_bid', 'auction_allotted', 'order', 'position', 'metrics', 'breach', 'breach_alert', 'system_alert'];

let system: TestSystem;
let isin: string;
let auction: string;

/** A seeded simulator run, on a fake clock, long enough for every event type (auctions open, close and allot). */
function marketEvents(): DomainEvent[] {
  let t = Date.parse('2026-01-05T04:00:00Z');
  const generator = new MarketGenerator({ ratePerSecond: 200, users: [USER], random: seededRandom(7), now: () => new Date((t += 5)) });
  return Array.from({ length: 600 }, () => generator.next()).flat();
}

beforeAll(async () => {
  system = await startTestSystem({
    WS_HEARTBEAT_INTERVAL: '1',
    // Any error reply raises the error_rate alert on system.alerts within ~100 ms.
    ALERT_THRESHOLDS_JSON: JSON.stringify({ max_error_rate: 0, max_connection_failure_rate: 1 }),
    ALERT_EVAL_INTERVAL_MS: '100',
    ALERT_WINDOW_MS: '1000',
    ALERT_MIN_SAMPLES: '1',
  });
  const events = marketEvents();
  for (const e of events) await system.ingest.submit(e, 'test');
  isin = (events.find((e) => e.type === 'trade') as DomainEvent & { isin: string }).isin;
  auction = (events.find((e) => e.type === 'auction.allotted') as DomainEvent & { auction_id: string }).auction_id;
}, 120_000);
afterAll(async () => {
  await system.close();
});

/** The entries (batches flattened) and snapshots a client got for `topic`. */
const of = (client: TestClient, topic: string, type: Envelope['type']) => client.received.filter((e) => e.topic === topic && e.type === type);

/** Subscribes again from seq 0 of the epoch held: the whole history comes back as deltas/alerts. */
async function replayHistory(client: TestClient, topic: string, batchSize?: number): Promise<void> {
  const epoch = of(client, topic, 'snapshot')[0]?.meta.epoch;
  const reply = await client.request('subscribe', { topic, resume_from_seq: 0, epoch, ...(batchSize ? { batch_size: batchSize } : {}) });
  expect(reply.payload).toMatchObject({ action: 'subscribe', resumed_from: 0 });
}

describe.each(TRANSPORTS)('every server message over %s is in schemas/server', (transport: Transport) => {
  it('each envelope type, each payload kind, each ack action, both error forms and a refusal', async () => {
    const token = system.token(USER);
    const open = (stream: Stream, id: string) => openClient(transport, system.server.url, stream, id, token);
    const market = await open('market', isin);
    const auctions = await open('auction', auction);
    const trading = await open('trading', USER);
    const risk = await open('risk', USER);
    const mobile = await open('mobile', USER);
    const ops = await openClient(transport, system.server.url, 'risk', `ops-${transport}`, system.token(`ops-${transport}`, 'operator'));
    const clients = [market, auctions, trading, risk, mobile, ops];

    // Deltas and alerts of every kind, one topic in batches.
    await replayHistory(market, topicOf.prices(isin), 50);
    await replayHistory(auctions, topicOf.auction(auction));
    for (const topic of [topicOf.trading(USER), topicOf.portfolio(USER)]) await replayHistory(trading, topic);
    for (const topic of [topicOf.risk(USER), topicOf.riskAlerts(USER)]) await replayHistory(risk, topic);
    expect((await mobile.request('subscribe', { topic: topicOf.mobile(USER) })).type).toBe('ack');

    // A re-sync (the client's epoch is not the topic's) and a conflation (market data paused in background mode).
    expect((await market.request('subscribe', { topic: topicOf.prices(isin), resume_from_seq: 1, epoch: 'not-this-epoch' })).payload).toMatchObject({ resync: true });
    expect((await market.request('background_mode', { enabled: true })).type).toBe('ack');
    await system.ingest.submit(quote(isin), 'test');
    expect((await market.request('background_mode', { enabled: false })).type).toBe('ack');
    await waitFor(() => of(market, topicOf.prices(isin), 'snapshot').some((e) => e.meta.conflated !== undefined), 5000, 'conflated snapshot');

    // The other requests: unsubscribe, ping, refresh, and one refused (an error reply, which raises a system alert).
    expect((await market.request('ping', {})).type).toBe('pong');
    expect((await trading.request('refresh', { token: system.token(USER) })).type).toBe('ack');
    expect((await trading.request('unsubscribe', { topic: topicOf.portfolio(USER) })).type).toBe('ack');
    expect(await market.request('subscribe', { topic: 'prices.NOT-AN-ISIN' })).toMatchObject({ type: 'error', code: 'INVALID_TOPIC' });
    expect((await ops.request('subscribe', { topic: SYSTEM_ALERTS_TOPIC })).type).toBe('ack');
    await waitFor(() => of(ops, SYSTEM_ALERTS_TOPIC, 'alert').length > 0, 10_000, 'a system alert');
    await waitFor(() => clients.every((c) => c.received.some((e) => e.type === 'heartbeat')), 5000, 'heartbeats');

    // The closing error: an operator cuts the user; and a refusal (Socket.IO: connect_error's data).
    const res = await fetch(`${system.server.url}/api/v1/admin/disconnect?user=${USER}`, { method: 'POST', headers: { authorization: `Bearer ${system.token('admin', 'operator')}` } });
    expect(((await res.json()) as { disconnected: number }).disconnected).toBe(5);
    await Promise.all([market, auctions, trading, risk, mobile].map((c) => c.closed()));
    expect(market.received.some((e) => e.type === 'error' && (e as ErrorEnvelope).code === 'DISCONNECTED_BY_OPERATOR')).toBe(true);
    await expect(openClient(transport, system.server.url, 'market', isin, 'not-a-jwt')).rejects.toEqual(expect.any(RefusedError));
    ops.close();

    const kinds = new Set(clients.flatMap((c) => c.received.filter((e) => e.type === 'delta' || e.type === 'alert').map((e) => (e.payload as { kind: string }).kind)));
    expect([...kinds].sort()).toEqual([...PAYLOAD_KINDS].sort());
    // The guard validated every type the contract has, on this transport (each one arrived and was checked).
    expect(checkedTypes(transport)).toEqual([...SERVER_ENVELOPE_TYPES].sort());
  });
});
