import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyDelta, bookMatches, initialState, isDeltaKind, type DeltaPayload, type PricesState, type StateOf } from '../../src/domain/deltas/index.js';
import type { DomainEvent } from '../../src/domain/events.js';
import type { JsonObject } from '../../src/domain/json.js';
import { topicOf } from '../../src/domain/topics.js';
import { project } from '../../src/projector/project.js';

/**
 * The client's side of the projection: folding each delta's payload (as it arrives, through JSON) onto the
 * topic's initial state with applyDelta yields the projector's state after every event, for random event
 * sequences of every topic kind, rejected events included (they produce no delta). This is what lets
 * @bondx/client keep a local state that is the server's snapshot at every seq.
 */

const ISIN = 'IN0020230085';
const USER = 'u1';
const AUCTION = 'A1';

/** Timestamps over three UTC days, so a trading day's figures reset within a run. */
const ts = fc.integer({ min: 0, max: 3 * 24 * 60 - 1 }).map((m) => new Date(Date.UTC(2026, 10, 26) + m * 60_000).toISOString());
const price = fc.integer({ min: 9_800, max: 10_200 }).map((p) => p / 100);
const size = fc.integer({ min: 1, max: 9_000_000 });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
/** Drops undefined fields, as JSON would: events come from upstream JSON. */
const plain = <T extends object>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

type Untagged = DomainEvent extends infer E ? (E extends DomainEvent ? Omit<E, 'event_id'> : never) : never;

const pricesEvents: fc.Arbitrary<Untagged>[] = [
  fc.record({ type: fc.constant('quote' as const), isin: fc.constant(ISIN), ts, bid: price, ask: price, bid_size: size, ask_size: size, bid_yield: maybe(fc.double({ min: 5, max: 9, noNaN: true })) }),
  fc.record({
    type: fc.constant('book' as const),
    isin: fc.constant(ISIN),
    ts,
    side: fc.constantFrom('bid' as const, 'ask' as const),
    levels: fc.array(fc.record({ price, size: fc.oneof(fc.constant(0), size) }), { minLength: 1, maxLength: 30 }),
  }),
  // A small pool of trade ids, so duplicates (rejected) happen.
  fc.record({ type: fc.constant('trade' as const), isin: fc.constant(ISIN), ts, trade_id: fc.integer({ min: 1, max: 80 }).map((n) => `T${n}`), price, size, yield: maybe(fc.double({ min: 5, max: 9, noNaN: true })) }),
];

const auctionBase = { auction_id: fc.constant(AUCTION), isin: fc.constant(ISIN), ts };
const auctionEvents: fc.Arbitrary<Untagged>[] = [
  fc.record({ type: fc.constant('auction.opened' as const), ...auctionBase, bid_basis: maybe(fc.constantFrom('yield' as const, 'price' as const)), notified_amount: maybe(size) }),
  fc.record({
    type: fc.constant('auction.bid' as const),
    ...auctionBase,
    bid_id: fc.uuid(),
    user_id: fc.constant(USER),
    yield: maybe(fc.integer({ min: 700, max: 760 }).map((y) => y / 100)),
    price: maybe(price),
    amount: size,
  }),
  fc.record({ type: fc.constant('auction.closed' as const), ...auctionBase }),
  fc.record({ type: fc.constant('auction.allotted' as const), ...auctionBase, cutoff_yield: fc.constant(7.19), cutoff_price: price, allotted_amount: size }),
];

const orderEvents: fc.Arbitrary<Untagged>[] = [
  fc.record({
    type: fc.constantFrom('order.accepted' as const, 'order.partially_filled' as const, 'order.filled' as const, 'order.cancelled' as const, 'order.rejected' as const),
    user_id: fc.constant(USER),
    ts,
    order_id: fc.integer({ min: 1, max: 70 }).map((n) => `o${n}`),
    isin: fc.constant(ISIN),
    side: fc.constantFrom('buy' as const, 'sell' as const),
    price,
    quantity: fc.constant(100),
    filled_quantity: maybe(fc.integer({ min: 0, max: 100 })),
    reason: maybe(fc.constant('limit')),
  }),
];

const positionEvents: fc.Arbitrary<Untagged>[] = [
  fc.record({
    type: fc.constant('position' as const),
    user_id: fc.constant(USER),
    ts,
    isin: fc.constantFrom(ISIN, 'IN0020240019', 'IN0020220037'),
    quantity: fc.oneof(fc.constant(0), size),
    avg_price: price,
    mtm: maybe(fc.integer({ min: -1000, max: 1000 })),
  }),
];

const riskEvents: fc.Arbitrary<Untagged>[] = [
  fc.record({ type: fc.constant('risk.metrics' as const), user_id: fc.constant(USER), ts, exposure: size, dv01: size, limit_utilisation: fc.double({ min: 0, max: 2, noNaN: true }) }),
  fc.record({
    type: fc.constant('risk.breach' as const),
    user_id: fc.constant(USER),
    ts,
    limit: fc.constantFrom('dv01', 'exposure', 'issuer'),
    value: size,
    threshold: size,
    severity: fc.constantFrom('info' as const, 'warning' as const, 'critical' as const),
  }),
];

/** Per topic kind: its events and the topics they touch. */
const KINDS = [
  { kind: 'prices', events: pricesEvents, topics: [topicOf.prices(ISIN)], maxLength: 150 },
  { kind: 'auctions', events: auctionEvents, topics: [topicOf.auction(AUCTION)], maxLength: 60 },
  { kind: 'trading', events: orderEvents, topics: [topicOf.trading(USER)], maxLength: 200 },
  { kind: 'portfolio', events: positionEvents, topics: [topicOf.portfolio(USER)], maxLength: 60 },
  // 150 breaches overflow the 100 kept alerts.
  { kind: 'risk and risk alerts', events: riskEvents, topics: [topicOf.risk(USER), topicOf.riskAlerts(USER)], maxLength: 250 },
];

describe('applyDelta: a client folding payloads holds the projector’s state', () => {
  it.each(KINDS)('$kind', ({ events, topics, maxLength }) => {
    const sequence = fc.array(fc.oneof(...events), { minLength: 1, maxLength });
    fc.assert(
      fc.property(sequence, (untagged) => {
        const server = new Map<string, JsonObject>();
        const client = new Map(topics.map((t) => [t, initialState(t) as JsonObject]));
        untagged.forEach((e, i) => {
          const event = plain({ ...e, event_id: `e${i}` }) as DomainEvent;
          const { changes } = project(event, server);
          for (const change of changes) {
            server.set(change.topic, change.state);
            // Over the wire: the client sees the payload's JSON, never the server's objects.
            const payload = plain(change.payload) as DeltaPayload;
            expect(isDeltaKind(payload.kind)).toBe(true);
            client.set(change.topic, applyDelta(client.get(change.topic) as StateOf<DeltaPayload>, payload));
          }
          for (const topic of topics) {
            const expected = server.get(topic) ?? initialState(topic);
            expect(client.get(topic)).toEqual(plain(expected as JsonObject));
          }
          const prices = server.get(topicOf.prices(ISIN)) as PricesState | undefined;
          if (prices) expect(bookMatches(prices.l2)).toBe(true);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('the generators reach rejections and accepted events alike (the property is not vacuous)', () => {
    const outcomes = { applied: 0, rejected: 0 };
    const sample = fc.sample(fc.array(fc.oneof(...auctionEvents, ...orderEvents, ...pricesEvents), { minLength: 50, maxLength: 50 }), 20);
    for (const run of sample) {
      const states = new Map<string, JsonObject>();
      run.forEach((e, i) => {
        const result = project(plain({ ...e, event_id: `s${i}` }) as DomainEvent, states);
        if (result.rejected === undefined) {
          outcomes.applied++;
          for (const c of result.changes) states.set(c.topic, c.state);
        } else outcomes.rejected++;
      });
    }
    expect(outcomes.applied).toBeGreaterThan(100);
    expect(outcomes.rejected).toBeGreaterThan(50);
  });
});
