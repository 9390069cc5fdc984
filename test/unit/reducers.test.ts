import { describe, expect, it } from 'vitest';
import type {
  AuctionAllottedEvent,
  AuctionBidEvent,
  AuctionOpenedEvent,
  BookEvent,
  DomainEvent,
  OrderEvent,
  PositionEvent,
  QuoteEvent,
  RiskBreachEvent,
  RiskMetricsEvent,
  TradeEvent,
} from '../../src/domain/events.js';
import type { JsonObject } from '../../src/domain/json.js';
import type { TopicChange } from '../../src/store/topic-store.js';
import { project, topicsFor } from '../../src/projector/project.js';

const ISIN = 'IN0020230085';
const TS = '2024-05-01T10:00:00Z';
let seq = 0;
const base = () => ({ event_id: `e${++seq}`, ts: TS });

const ev = {
  quote: (o: Partial<QuoteEvent> = {}): QuoteEvent => ({ ...base(), type: 'quote', isin: ISIN, bid: 100.1, ask: 100.25, bid_size: 5, ask_size: 7, ...o }),
  book: (side: BookEvent['side'], levels: [number, number][], o: Partial<BookEvent> = {}): BookEvent => ({
    ...base(),
    type: 'book',
    isin: ISIN,
    side,
    levels: levels.map(([price, size]) => ({ price, size })),
    ...o,
  }),
  trade: (o: Partial<TradeEvent> = {}): TradeEvent => ({ ...base(), type: 'trade', isin: ISIN, trade_id: `t${seq}`, price: 100, size: 10, ...o }),
  opened: (o: Partial<AuctionOpenedEvent> = {}): AuctionOpenedEvent => ({ ...base(), type: 'auction.opened', auction_id: 'A1', isin: ISIN, ...o }),
  bid: (o: Partial<AuctionBidEvent> = {}): AuctionBidEvent => ({
    ...base(),
    type: 'auction.bid',
    auction_id: 'A1',
    isin: ISIN,
    bid_id: `b${seq}`,
    user_id: 'u1',
    amount: 100,
    ...o,
  }),
  closed: (): DomainEvent => ({ ...base(), type: 'auction.closed', auction_id: 'A1', isin: ISIN }),
  allotted: (o: Partial<AuctionAllottedEvent> = {}): AuctionAllottedEvent => ({
    ...base(),
    type: 'auction.allotted',
    auction_id: 'A1',
    isin: ISIN,
    cutoff_yield: 7.19,
    cutoff_price: 99.5,
    allotted_amount: 1000,
    ...o,
  }),
  order: (type: OrderEvent['type'], o: Partial<OrderEvent> = {}): OrderEvent => ({
    ...base(),
    type,
    user_id: 'u1',
    order_id: 'o1',
    isin: ISIN,
    side: 'buy',
    price: 100,
    quantity: 50,
    ...o,
  }),
  position: (o: Partial<PositionEvent> = {}): PositionEvent => ({
    ...base(),
    type: 'position',
    user_id: 'u1',
    isin: ISIN,
    quantity: 100,
    avg_price: 99.5,
    ...o,
  }),
  metrics: (o: Partial<RiskMetricsEvent> = {}): RiskMetricsEvent => ({
    ...base(),
    type: 'risk.metrics',
    user_id: 'u1',
    exposure: 1e6,
    dv01: 850,
    limit_utilisation: 0.4,
    ...o,
  }),
  breach: (o: Partial<RiskBreachEvent> = {}): RiskBreachEvent => ({
    ...base(),
    type: 'risk.breach',
    user_id: 'u1',
    limit: 'dv01',
    value: 1200,
    threshold: 1000,
    severity: 'critical',
    ...o,
  }),
};

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Folds `events` from empty states; states are frozen so any mutation by a reducer throws. */
function fold(events: DomainEvent[]): Map<string, JsonObject> {
  const states = new Map<string, JsonObject>();
  for (const e of events) {
    const result = project(e, states);
    if (result.rejected !== undefined) throw new Error(`setup event ${e.type} rejected: ${result.rejected}`);
    for (const c of result.changes) states.set(c.topic, deepFreeze(c.state));
  }
  return states;
}

interface Expected {
  topic: string;
  type?: TopicChange['type'];
  payload: Record<string, unknown>;
  state?: Record<string, unknown>;
}

interface Case {
  name: string;
  given?: DomainEvent[];
  event: DomainEvent;
  /** Expected changes (matched with toMatchObject), or the expected rejection. */
  expect: Expected[] | { rejected: RegExp };
}

const P = `prices.${ISIN}`;
const twentyBids = Array.from({ length: 20 }, (_, i): [number, number] => [100 - i * 0.05, 10]);

const cases: Case[] = [
  // prices: L1
  {
    name: 'quote sets L1 with mid and spread free of float noise',
    event: ev.quote({ bid_yield: 7.21, ask_yield: 7.2 }),
    expect: [
      {
        topic: P,
        payload: { kind: 'l1', bid: 100.1, ask: 100.25, bid_size: 5, ask_size: 7, bid_yield: 7.21, ask_yield: 7.2, mid: 100.175, spread: 0.15 },
        state: { isin: ISIN, l1: { mid: 100.175, spread: 0.15 }, l2: { bids: [], asks: [] }, trades: [], updated_at: TS },
      },
    ],
  },
  {
    name: 'quote without yields reports them as null and replaces the previous L1',
    given: [ev.quote({ bid_yield: 7.21 })],
    event: ev.quote({ bid: 99, ask: 101 }),
    expect: [{ topic: P, payload: { kind: 'l1', bid: 99, bid_yield: null, ask_yield: null, mid: 100, spread: 2 }, state: { l1: { bid: 99, bid_yield: null } } }],
  },
  // prices: L2
  {
    name: 'book sorts bids best (highest) first',
    event: ev.book('bid', [[99.9, 5], [100, 3], [99.95, 4]]),
    expect: [
      {
        topic: P,
        payload: { kind: 'l2', side: 'bid', levels: [{ price: 100, size: 3 }, { price: 99.95, size: 4 }, { price: 99.9, size: 5 }] },
        state: { l2: { bids: [{ price: 100, size: 3 }, { price: 99.95, size: 4 }, { price: 99.9, size: 5 }], asks: [] } },
      },
    ],
  },
  {
    name: 'book sorts asks best (lowest) first',
    event: ev.book('ask', [[100.3, 5], [100.2, 3]]),
    expect: [{ topic: P, payload: { kind: 'l2', side: 'ask' }, state: { l2: { bids: [], asks: [{ price: 100.2, size: 3 }, { price: 100.3, size: 5 }] } } }],
  },
  {
    name: 'book sizes are absolute, size 0 removes, unchanged levels are not in the delta',
    given: [ev.book('bid', [[100, 3], [99.95, 4], [99.9, 5]])],
    event: ev.book('bid', [[100, 0], [99.95, 6], [99.9, 5]]),
    expect: [
      {
        topic: P,
        payload: { kind: 'l2', side: 'bid', levels: [{ price: 99.95, size: 6 }, { price: 100, size: 0 }] },
        state: { l2: { bids: [{ price: 99.95, size: 6 }, { price: 99.9, size: 5 }] } },
      },
    ],
  },
  {
    name: 'a better level pushing the 20th out reports it with size 0',
    given: [ev.book('bid', twentyBids)],
    event: ev.book('bid', [[100.05, 1]]),
    expect: [{ topic: P, payload: { kind: 'l2', levels: [{ price: 100.05, size: 1 }, { price: twentyBids[19]?.[0], size: 0 }] } }],
  },
  // prices: trades
  {
    name: 'trade becomes last_trade and starts the day volume / vwap',
    event: ev.trade({ trade_id: 'T1', price: 100, size: 10, yield: 7.2 }),
    expect: [
      {
        topic: P,
        payload: { kind: 'trade', trade_id: 'T1', price: 100, size: 10, yield: 7.2, day_volume: 10, day_vwap: 100 },
        state: { last_trade: { trade_id: 'T1' }, trades: [{ trade_id: 'T1' }], day: { date: '2024-05-01', volume: 10, vwap: 100, trades: 1 } },
      },
    ],
  },
  {
    name: 'trades are newest first and vwap is volume weighted',
    given: [ev.trade({ trade_id: 'T1', price: 100, size: 10 })],
    event: ev.trade({ trade_id: 'T2', price: 101, size: 30 }),
    expect: [{ topic: P, payload: { day_volume: 40, day_vwap: 100.75 }, state: { trades: [{ trade_id: 'T2' }, { trade_id: 'T1' }] } }],
  },
  {
    name: 'the first trade of a new UTC day resets volume and vwap',
    given: [ev.trade({ trade_id: 'T1', price: 100, size: 10 })],
    event: ev.trade({ trade_id: 'T2', price: 102, size: 5, ts: '2024-05-02T09:00:00+05:30' }),
    expect: [{ topic: P, payload: { day_volume: 5, day_vwap: 102 }, state: { day: { date: '2024-05-02', volume: 5, trades: 1 } } }],
  },
  {
    name: 'a trade_id seen before is rejected',
    given: [ev.trade({ trade_id: 'T1' })],
    event: ev.trade({ trade_id: 'T1' }),
    expect: { rejected: /duplicate trade_id T1/ },
  },
  // auctions
  {
    name: 'auction.opened starts an open auction, by yield by default',
    event: ev.opened({ notified_amount: 14000 }),
    expect: [
      {
        topic: 'auctions.A1',
        payload: { kind: 'auction_state', status: 'open', isin: ISIN, bid_basis: 'yield', notified_amount: 14000, closes_at: null },
        state: { status: 'open', bids: { count: 0, amount: 0 }, histogram: [], allotment: null },
      },
    ],
  },
  {
    name: 'a yield bid lands in its 1bp bucket',
    given: [ev.opened()],
    event: ev.bid({ yield: 7.18, amount: 250 }),
    expect: [
      {
        topic: 'auctions.A1',
        payload: { kind: 'auction_bid', bid_basis: 'yield', bucket: { from: 7.18, to: 7.19, count: 1, amount: 250 }, bids: { count: 1, amount: 250 } },
        state: { histogram: [{ from: 7.18, to: 7.19, count: 1, amount: 250 }] },
      },
    ],
  },
  {
    name: 'bids accumulate per bucket and the histogram stays sorted',
    given: [ev.opened(), ev.bid({ yield: 7.2, amount: 100 }), ev.bid({ yield: 7.1834, amount: 50 })],
    event: ev.bid({ yield: 7.1899, amount: 70 }),
    expect: [
      {
        topic: 'auctions.A1',
        payload: { bucket: { from: 7.18, count: 2, amount: 120 }, bids: { count: 3, amount: 220 } },
        state: { histogram: [{ from: 7.18, count: 2, amount: 120 }, { from: 7.2, count: 1, amount: 100 }] },
      },
    ],
  },
  {
    name: 'a price bid lands in its 0.05 bucket',
    given: [ev.opened({ bid_basis: 'price' })],
    event: ev.bid({ price: 99.87, amount: 10 }),
    expect: [{ topic: 'auctions.A1', payload: { bid_basis: 'price', bucket: { from: 99.85, to: 99.9, count: 1 } } }],
  },
  {
    name: 'a bid without the auction basis is rejected',
    given: [ev.opened({ bid_basis: 'price' })],
    event: ev.bid({ yield: 7.18 }),
    expect: { rejected: /takes bids by price/ },
  },
  { name: 'a bid before the auction opened is rejected', event: ev.bid({ yield: 7.18 }), expect: { rejected: /never opened/ } },
  {
    name: 'a bid after close is rejected',
    given: [ev.opened(), ev.closed()],
    event: ev.bid({ yield: 7.18 }),
    expect: { rejected: /bid on closed auction A1/ },
  },
  {
    name: 'a bid on another ISIN is rejected',
    given: [ev.opened()],
    event: ev.bid({ yield: 7.18, isin: 'US0378331005' }),
    expect: { rejected: /does not match/ },
  },
  { name: 'opening twice is rejected', given: [ev.opened()], event: ev.opened(), expect: { rejected: /already opened/ } },
  {
    name: 'auction.closed closes an open auction',
    given: [ev.opened(), ev.bid({ yield: 7.18 })],
    event: ev.closed(),
    expect: [{ topic: 'auctions.A1', payload: { kind: 'auction_state', status: 'closed', bids: { count: 1, amount: 100 } }, state: { status: 'closed', closed_at: TS } }],
  },
  { name: 'closing twice is rejected', given: [ev.opened(), ev.closed()], event: ev.closed(), expect: { rejected: /close of closed/ } },
  {
    name: 'auction.allotted records the results of a closed auction',
    given: [ev.opened(), ev.closed()],
    event: ev.allotted(),
    expect: [
      {
        topic: 'auctions.A1',
        payload: { kind: 'auction_allotted', status: 'allotted', cutoff_yield: 7.19, cutoff_price: 99.5, allotted_amount: 1000 },
        state: { status: 'allotted', allotment: { cutoff_yield: 7.19, cutoff_price: 99.5, allotted_amount: 1000 } },
      },
    ],
  },
  { name: 'allotment while open is rejected', given: [ev.opened()], event: ev.allotted(), expect: { rejected: /allotment of open/ } },
  {
    name: 'bids after allotment are rejected',
    given: [ev.opened(), ev.closed(), ev.allotted()],
    event: ev.bid({ yield: 7.18 }),
    expect: { rejected: /bid on allotted/ },
  },
  // trading
  {
    name: 'order.accepted opens an order',
    event: ev.order('order.accepted'),
    expect: [
      {
        topic: 'trading.u1',
        payload: { kind: 'order', event: 'order.accepted', order: { order_id: 'o1', status: 'accepted', filled_quantity: 0, reason: null } },
        state: { open: { o1: { status: 'accepted' } }, recent: [] },
      },
    ],
  },
  {
    name: 'order.partially_filled updates the open order',
    given: [ev.order('order.accepted')],
    event: ev.order('order.partially_filled', { filled_quantity: 20 }),
    expect: [{ topic: 'trading.u1', payload: { event: 'order.partially_filled', order: { status: 'partially_filled', filled_quantity: 20 } }, state: { open: { o1: { filled_quantity: 20 } } } }],
  },
  {
    name: 'order.filled moves the order to recent, fully filled',
    given: [ev.order('order.accepted'), ev.order('order.partially_filled', { filled_quantity: 20 })],
    event: ev.order('order.filled'),
    expect: [{ topic: 'trading.u1', payload: { order: { status: 'filled', filled_quantity: 50 } }, state: { open: {}, recent: [{ order_id: 'o1', status: 'filled' }] } }],
  },
  {
    name: 'order.rejected of a new order lands in recent with its reason',
    event: ev.order('order.rejected', { reason: 'price outside band' }),
    expect: [{ topic: 'trading.u1', payload: { order: { status: 'rejected', reason: 'price outside band' } }, state: { open: {}, recent: [{ status: 'rejected' }] } }],
  },
  {
    name: 'order.cancelled closes an open order',
    given: [ev.order('order.accepted')],
    event: ev.order('order.cancelled'),
    expect: [{ topic: 'trading.u1', payload: { order: { status: 'cancelled' } }, state: { open: {}, recent: [{ status: 'cancelled' }] } }],
  },
  {
    name: 'an event on a finished order is rejected',
    given: [ev.order('order.accepted'), ev.order('order.filled')],
    event: ev.order('order.cancelled'),
    expect: { rejected: /order o1 already filled/ },
  },
  { name: 'accepting twice is rejected', given: [ev.order('order.accepted')], event: ev.order('order.accepted'), expect: { rejected: /already accepted/ } },
  {
    name: 'a fill smaller than the known one is stale and rejected',
    given: [ev.order('order.accepted'), ev.order('order.partially_filled', { filled_quantity: 30 })],
    event: ev.order('order.partially_filled', { filled_quantity: 20 }),
    expect: { rejected: /stale/ },
  },
  {
    name: 'order ids are looked up as own keys only (no prototype hits)',
    event: ev.order('order.accepted', { order_id: 'constructor' }),
    expect: [{ topic: 'trading.u1', payload: { order: { order_id: 'constructor' } } }],
  },
  // portfolio
  {
    name: 'position sets the holding of an ISIN',
    event: ev.position({ mtm: -1200 }),
    expect: [
      {
        topic: 'portfolio.u1',
        payload: { kind: 'position', isin: ISIN, quantity: 100, avg_price: 99.5, mtm: -1200 },
        state: { positions: { [ISIN]: { quantity: 100, mtm: -1200 } } },
      },
    ],
  },
  {
    name: 'a short position is kept',
    event: ev.position({ quantity: -40 }),
    expect: [{ topic: 'portfolio.u1', payload: { quantity: -40, mtm: null }, state: { positions: { [ISIN]: { quantity: -40 } } } }],
  },
  {
    name: 'quantity 0 removes the position',
    given: [ev.position(), ev.position({ isin: 'US0378331005' })],
    event: ev.position({ quantity: 0 }),
    expect: [{ topic: 'portfolio.u1', payload: { kind: 'position', isin: ISIN, quantity: 0 }, state: { positions: { US0378331005: { quantity: 100 } } } }],
  },
  // risk
  {
    name: 'risk.metrics replaces the metrics',
    given: [ev.metrics()],
    event: ev.metrics({ dv01: 900 }),
    expect: [{ topic: 'risk.u1', payload: { kind: 'metrics', exposure: 1e6, dv01: 900, limit_utilisation: 0.4 }, state: { metrics: { dv01: 900 } } }],
  },
  {
    name: 'risk.breach yields a breach delta and an alert',
    given: [ev.metrics()],
    event: ev.breach({ event_id: 'B1' }),
    expect: [
      {
        topic: 'risk.u1',
        type: 'delta',
        payload: { kind: 'breach', limit: 'dv01', value: 1200, threshold: 1000, severity: 'critical' },
        state: { metrics: { dv01: 850 }, breaches: { dv01: { value: 1200, severity: 'critical' } } },
      },
      {
        topic: 'risk.u1.alerts',
        type: 'alert',
        payload: { kind: 'breach_alert', alert_id: 'B1', limit: 'dv01', value: 1200, threshold: 1000, severity: 'critical' },
        state: { alerts: [{ alert_id: 'B1' }] },
      },
    ],
  },
  {
    name: 'a newer breach of the same limit replaces the active one, alerts accumulate newest first',
    given: [ev.breach({ event_id: 'B1', severity: 'warning' }), ev.breach({ event_id: 'B2', limit: 'exposure' })],
    event: ev.breach({ event_id: 'B3', value: 1500 }),
    expect: [
      { topic: 'risk.u1', payload: { kind: 'breach' }, state: { breaches: { dv01: { value: 1500, severity: 'critical' }, exposure: { value: 1200 } } } },
      { topic: 'risk.u1.alerts', type: 'alert', payload: { alert_id: 'B3' }, state: { alerts: [{ alert_id: 'B3' }, { alert_id: 'B2' }, { alert_id: 'B1' }] } },
    ],
  },
];

describe('project', () => {
  it.each(cases)('$name', ({ given = [], event, expect: expected }) => {
    const states = fold(given);
    const result = project(event, states);
    if ('rejected' in expected) {
      expect(result.changes).toEqual([]);
      expect(result.rejected).toMatch(expected.rejected);
      return;
    }
    expect(result.rejected).toBeUndefined();
    // Contract: one change per topic the event touches, in topicsFor order.
    expect(result.changes.map((c) => c.topic)).toEqual(topicsFor(event));
    expect(result.changes).toHaveLength(expected.length);
    expected.forEach((want, i) => {
      const got = result.changes[i];
      expect(got?.topic).toBe(want.topic);
      expect(got?.type).toBe(want.type ?? 'delta');
      expect(got?.payload).toMatchObject(want.payload);
      if (want.state) expect(got?.state).toMatchObject(want.state);
    });
  });

  it('keeps exactly the 20 best ask levels of 25', () => {
    const levels = Array.from({ length: 25 }, (_, i): [number, number] => [101 + i, 1]);
    const { changes } = project(ev.book('ask', levels.reverse()), new Map());
    const asks = (changes[0]?.state['l2'] as { asks: { price: number }[] } | undefined)?.asks ?? [];
    expect(asks.map((l) => l.price)).toEqual(Array.from({ length: 20 }, (_, i) => 101 + i));
  });

  it('bounds trades to 50, recent orders to 50, alerts to 100', () => {
    const states = fold([
      ...Array.from({ length: 55 }, (_, i) => ev.trade({ trade_id: `T${i}` })),
      ...Array.from({ length: 55 }, (_, i) => ev.order('order.rejected', { order_id: `o${i}` })),
      ...Array.from({ length: 105 }, (_, i) => ev.breach({ event_id: `B${i}` })),
    ]);
    const prices = states.get(P) as { trades: { trade_id: string }[]; day: { trades: number; volume: number } };
    expect(prices.trades).toHaveLength(50);
    expect(prices.trades[0]?.trade_id).toBe('T54');
    expect(prices.trades[49]?.trade_id).toBe('T5');
    expect(prices.day).toMatchObject({ trades: 55, volume: 550 });
    const trading = states.get('trading.u1') as { recent: { order_id: string }[] };
    expect(trading.recent).toHaveLength(50);
    expect(trading.recent[0]?.order_id).toBe('o54');
    const alerts = states.get('risk.u1.alerts') as { alerts: { alert_id: string }[] };
    expect(alerts.alerts).toHaveLength(100);
    expect(alerts.alerts[0]?.alert_id).toBe('B104');
  });

  it('does not mutate the states it is given', () => {
    const states = fold([ev.quote(), ev.book('bid', [[100, 1]]), ev.trade()]);
    const before = JSON.stringify([...states]);
    // fold froze the states: a mutating reducer would throw here.
    expect(project(ev.book('bid', [[100, 0], [99, 2]]), states).changes).toHaveLength(1);
    expect(project(ev.trade(), states).changes).toHaveLength(1);
    expect(JSON.stringify([...states])).toBe(before);
  });

  it('routes every event type to its topics', () => {
    expect(topicsFor(ev.quote())).toEqual([P]);
    expect(topicsFor(ev.bid({ yield: 7 }))).toEqual(['auctions.A1']);
    expect(topicsFor(ev.order('order.filled', { user_id: 'u9' }))).toEqual(['trading.u9']);
    expect(topicsFor(ev.position({ user_id: 'u9' }))).toEqual(['portfolio.u9']);
    expect(topicsFor(ev.metrics({ user_id: 'u9' }))).toEqual(['risk.u9']);
    expect(topicsFor(ev.breach({ user_id: 'u9' }))).toEqual(['risk.u9', 'risk.u9.alerts']);
  });
});

describe('auction histogram bucket edges', () => {
  // [basis, bid, bucket from, bucket to]: buckets are [from, to) in the decimal the upstream wrote.
  const edges: ['yield' | 'price', number, number, number][] = [
    ['price', 100.05, 100.05, 100.1],
    ['price', 100.04999999999, 100, 100.05],
    ['price', 100.0500000001, 100.05, 100.1],
    ['price', 0.7, 0.7, 0.75], // 0.7 / 0.05 = 13.999999999999998
    ['price', 0.15, 0.15, 0.2],
    ['price', 0.1 + 0.2, 0.3, 0.35], // 0.30000000000000004
    ['price', 99999.95, 99999.95, 100000],
    ['price', 98765432.15, 98765432.15, 98765432.2],
    ['yield', 7.18, 7.18, 7.19],
    ['yield', 7.1799999999, 7.17, 7.18],
    ['yield', 0, 0, 0.01],
    ['yield', 0.1 + 0.2, 0.3, 0.31],
    ['yield', -0.01, -0.01, 0],
    ['yield', -0.015, -0.02, -0.01],
    ['yield', -1e-12, -0.01, 0],
    ['yield', 1234567.89, 1234567.89, 1234567.9],
  ];

  it.each(edges)('a %s bid of %s lands in [%s, %s)', (basis, value, from, to) => {
    const { changes } = project(ev.bid({ [basis]: value, amount: 1 }), fold([ev.opened({ bid_basis: basis })]));
    expect(changes[0]?.payload).toMatchObject({ bucket: { from, to, count: 1, amount: 1 } });
  });
});
