import { describe, expect, it } from 'vitest';
import type { DomainEvent, OrderEvent } from '../../src/domain/events.js';
import { isValidIsin } from '../../src/domain/isin.js';
import { validateEvent } from '../../src/ingest/validate.js';
import { INSTRUMENTS, priceFromYield, yieldFromPrice } from '../../src/simulator/instruments.js';
import { DEFAULT_SIM_USERS, MarketGenerator, type EventSource } from '../../src/simulator/generator.js';
import { seededRandom } from '../../src/simulator/random.js';
import { MarketSimulator } from '../../src/simulator/simulator.js';
import { sleep } from '../support/waits.js';

const START = Date.parse('2026-11-26T04:00:00.000Z');

/** The generator on a seeded PRNG and a fake clock advancing 20 ms per batch: no timers, no publishing. */
function run(seed: number, steps: number): { batches: DomainEvent[][]; events: DomainEvent[] } {
  let t = START;
  const generator = new MarketGenerator({ ratePerSecond: 50, random: seededRandom(seed), now: () => new Date(t) });
  const batches: DomainEvent[][] = [];
  for (let i = 0; i < steps; i++) {
    batches.push(generator.next());
    t += 20;
  }
  return { batches, events: batches.flat() };
}

const STEPS = 20_000;
const { batches, events } = run(42, STEPS);
const ofType = <T extends DomainEvent['type']>(type: T) => events.filter((e) => e.type === type) as (DomainEvent & { type: T })[];

describe('instruments', () => {
  it('has ~20 G-secs with valid ISO 6166 check digits, unique ISINs and a plausible curve', () => {
    expect(INSTRUMENTS.length).toBeGreaterThanOrEqual(20);
    expect(new Set(INSTRUMENTS.map((i) => i.isin)).size).toBe(INSTRUMENTS.length);
    for (const i of INSTRUMENTS) {
      expect(isValidIsin(i.isin), i.isin).toBe(true);
      expect(i.isin).toMatch(/^IN0020\d{6}$/);
      expect(i.name).toMatch(/^\d+\.\d{2}% GS \d{4}$/);
      expect(i.baseYield).toBeGreaterThanOrEqual(6.7);
      expect(i.baseYield).toBeLessThanOrEqual(7.3);
    }
    // The real 7.18% GS 2033.
    expect(INSTRUMENTS.find((i) => i.name === '7.18% GS 2033' && i.maturity.startsWith('2033'))?.isin).toBe('IN0020230085');
  });

  it('prices and yields invert each other', () => {
    for (const y of [5, 6.9, 7.25, 9]) {
      const p = priceFromYield(7.18, 7.3, y);
      expect(yieldFromPrice(7.18, 7.3, p)).toBeCloseTo(y, 8);
    }
    expect(priceFromYield(7.18, 7.3, 7.18)).toBeCloseTo(100, 8);
  });
});

describe('MarketGenerator.next', () => {
  it('produces only events that pass ingest validation, with unique ids and ISO timestamps', () => {
    expect(events.length).toBeGreaterThan(STEPS);
    const problems: string[] = [];
    for (const e of events) {
      const v = validateEvent(JSON.parse(JSON.stringify(e)));
      if (!v.ok) problems.push(`${e.type} ${e.event_id}: ${v.reason}`);
      if (new Date(e.ts).toISOString() !== e.ts) problems.push(`${e.event_id}: ts ${e.ts}`);
      if ('isin' in e && !isValidIsin(e.isin)) problems.push(`${e.event_id}: isin ${e.isin}`);
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(new Set(events.map((e) => e.event_id)).size).toBe(events.length);
    expect(batches.every((b) => b.length >= 1)).toBe(true);
  });

  it('covers every event type, mostly market data', () => {
    const types = new Set(events.map((e) => e.type));
    for (const t of ['quote', 'book', 'trade', 'auction.opened', 'auction.bid', 'auction.closed', 'auction.allotted', 'order.accepted', 'order.partially_filled', 'order.filled', 'order.cancelled', 'order.rejected', 'position', 'risk.metrics', 'risk.breach']) {
      expect(types.has(t as DomainEvent['type']), t).toBe(true);
    }
    const market = events.filter((e) => e.type === 'quote' || e.type === 'book' || e.type === 'trade').length;
    expect(market / events.length).toBeGreaterThan(0.6);
    // Every instrument is quoted, and the first steps warm up all of them.
    expect(new Set(ofType('quote').map((q) => q.isin)).size).toBe(INSTRUMENTS.length);
    expect(new Set(batches.slice(0, INSTRUMENTS.length).flat().map((e) => 'isin' in e && e.isin)).size).toBe(INSTRUMENTS.length);
  });

  it('is deterministic for a seed and clock', () => {
    const again = run(42, 500).events;
    expect(again).toEqual(events.slice(0, again.length));
    expect(run(7, 500).events).not.toEqual(again);
  });

  it('keeps quotes sane and consistent with the published book', () => {
    // Replays book events into local ladders; after each batch, every quote in it must match the top
    // of the book, which must be exactly 5 levels deep on each side.
    const books = new Map<string, { bid: Map<number, number>; ask: Map<number, number> }>();
    const best = (m: Map<number, number>, side: 'bid' | 'ask') => {
      const p = side === 'bid' ? Math.max(...m.keys()) : Math.min(...m.keys());
      return [p, m.get(p), m.size] as const;
    };
    const problems: string[] = [];
    let checked = 0;
    for (const batch of batches) {
      for (const e of batch) {
        if (e.type !== 'book') continue;
        const book = books.get(e.isin) ?? { bid: new Map(), ask: new Map() };
        books.set(e.isin, book);
        for (const l of e.levels) {
          if (l.size > 0) book[e.side].set(l.price, l.size);
          else if (!book[e.side].delete(l.price)) problems.push(`${e.event_id}: removes unknown level ${l.price}`);
        }
      }
      for (const e of batch) {
        if (e.type !== 'quote') continue;
        checked++;
        const by = e.bid_yield as number;
        const ay = e.ask_yield as number;
        if (!(e.bid < e.ask && by > ay && by < 8.5 && ay > 5.5)) problems.push(`${e.event_id}: insane quote ${JSON.stringify(e)}`);
        const book = books.get(e.isin);
        if (!book) {
          problems.push(`${e.event_id}: quote before any book`);
          continue;
        }
        const [bp, bs, bn] = best(book.bid, 'bid');
        const [ap, as, an] = best(book.ask, 'ask');
        if (bp !== e.bid || bs !== e.bid_size || ap !== e.ask || as !== e.ask_size || bn !== 5 || an !== 5) {
          problems.push(`${e.event_id}: quote ${e.bid}x${e.bid_size}/${e.ask}x${e.ask_size} vs book ${bp}x${bs}/${ap}x${as} depth ${bn}/${an}`);
        }
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    expect(checked).toBeGreaterThan(1000);
    expect(ofType('book').some((b) => b.levels.some((l) => l.size === 0))).toBe(true);
  });

  it('never repeats a trade_id', () => {
    const trades = ofType('trade');
    expect(new Set(trades.map((t) => t.trade_id)).size).toBe(trades.length);
  });

  it('runs auctions in lifecycle order: opened -> bids -> closed -> allotted', () => {
    const phase = new Map<string, string>();
    const bids = new Map<string, number[]>();
    let current: string | null = null;
    let completed = 0;
    for (const e of events) {
      switch (e.type) {
        case 'auction.opened':
          expect(phase.has(e.auction_id), `${e.auction_id} opened twice`).toBe(false);
          expect(current, 'one auction at a time').toBeNull();
          expect(e.auction_id).toMatch(/^RBI-\d{4}-\d{2}-\d{2}-\d{6}(-\d+)?$/);
          phase.set(e.auction_id, 'open');
          bids.set(e.auction_id, []);
          current = e.auction_id;
          break;
        case 'auction.bid':
          expect(phase.get(e.auction_id)).toBe('open');
          expect(e.yield).toBeGreaterThan(6);
          expect(e.yield).toBeLessThan(8);
          bids.get(e.auction_id)?.push(e.yield as number);
          break;
        case 'auction.closed':
          expect(phase.get(e.auction_id)).toBe('open');
          phase.set(e.auction_id, 'closed');
          break;
        case 'auction.allotted': {
          expect(phase.get(e.auction_id)).toBe('closed');
          phase.set(e.auction_id, 'allotted');
          const ys = bids.get(e.auction_id) ?? [];
          expect(ys.length).toBeGreaterThanOrEqual(20);
          expect(e.cutoff_yield).toBeGreaterThanOrEqual(Math.min(...ys));
          expect(e.cutoff_yield).toBeLessThanOrEqual(Math.max(...ys));
          expect(e.allotted_amount).toBeGreaterThan(0);
          current = null;
          completed++;
          break;
        }
        default:
          break;
      }
    }
    expect(completed).toBeGreaterThanOrEqual(3);
    // Bids come from several users, demo users included.
    const bidders = new Set(ofType('auction.bid').map((b) => b.user_id));
    expect(bidders.size).toBeGreaterThanOrEqual(5);
    expect(bidders.has('demo-trader')).toBe(true);
  });

  it('walks orders through their lifecycle without ever over-filling', () => {
    const orders = new Map<string, { last: OrderEvent; terminal: boolean }>();
    const users = new Set(events.filter((x): x is OrderEvent => x.type.startsWith('order.')).map((o) => o.user_id));
    expect([...users].sort()).toEqual([...DEFAULT_SIM_USERS].sort());

    for (const e of events) {
      if (!e.type.startsWith('order.')) continue;
      const o = e as OrderEvent;
      const filled = o.filled_quantity ?? 0;
      expect(filled).toBeLessThanOrEqual(o.quantity);
      expect(o.quantity % 5).toBe(0);
      const prev = orders.get(o.order_id);
      if (o.type === 'order.accepted' || o.type === 'order.rejected') {
        expect(prev, `${o.order_id} starts once`).toBeUndefined();
        expect(filled).toBe(0);
        if (o.type === 'order.rejected') expect(o.reason).toBeTruthy();
        orders.set(o.order_id, { last: o, terminal: o.type === 'order.rejected' });
        continue;
      }
      expect(prev, `${o.order_id} ${o.type} before accepted`).toBeDefined();
      if (!prev) continue;
      expect(prev.terminal, `${o.order_id} ${o.type} after terminal ${prev.last.type}`).toBe(false);
      expect([o.user_id, o.isin, o.side, o.price, o.quantity]).toEqual([prev.last.user_id, prev.last.isin, prev.last.side, prev.last.price, prev.last.quantity]);
      if (o.type === 'order.partially_filled') {
        expect(filled).toBeGreaterThan(prev.last.filled_quantity ?? 0);
        expect(filled).toBeLessThan(o.quantity);
      } else if (o.type === 'order.filled') {
        expect(filled).toBe(o.quantity);
      } else {
        expect(o.type).toBe('order.cancelled');
        expect(filled).toBe(prev.last.filled_quantity ?? 0);
      }
      orders.set(o.order_id, { last: o, terminal: o.type !== 'order.partially_filled' });
    }
  });

  it('keeps positions equal to the sum of fills, and reports risk', () => {
    const net = new Map<string, number>();
    const lastFilled = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'order.partially_filled' || e.type === 'order.filled') {
        const delta = (e.filled_quantity ?? 0) - (lastFilled.get(e.order_id) ?? 0);
        lastFilled.set(e.order_id, e.filled_quantity ?? 0);
        const key = `${e.user_id}/${e.isin}`;
        net.set(key, (net.get(key) ?? 0) + (e.side === 'buy' ? delta : -delta));
      } else if (e.type === 'position') {
        expect(e.quantity).toBe(net.get(`${e.user_id}/${e.isin}`));
        expect(e.avg_price).toBeGreaterThan(80);
        expect(e.avg_price).toBeLessThan(120);
      }
    }
    const metrics = ofType('risk.metrics');
    expect(metrics.length).toBeGreaterThan(100);
    expect(metrics.every((m) => m.limit_utilisation >= 0 && m.exposure >= 0)).toBe(true);
    const breaches = ofType('risk.breach');
    expect(breaches.length).toBeGreaterThan(0);
    expect(breaches.length).toBeLessThan(metrics.length / 5);
    expect(breaches.every((b) => (b.severity === 'warning' || b.severity === 'critical') && b.value >= b.threshold)).toBe(true);
  });
});

/** A source of single quotes with increasing, zero-padded ids: the loop's behaviour without the market's. */
function quotes(): EventSource & { taken: number } {
  const source = {
    taken: 0,
    next: (): DomainEvent[] => [{ event_id: `q-${String(++source.taken).padStart(8, '0')}`, type: 'quote', ts: new Date().toISOString(), isin: 'IN0020230085', bid: 99.5, ask: 99.6, bid_size: 5, ask_size: 5 }],
  };
  return source;
}

describe('MarketSimulator loop', () => {
  it('publishes about ratePerSecond events, in order, one at a time', async () => {
    const seen: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const sim = new MarketSimulator({
      ratePerSecond: 200,
      source: quotes(),
      publish: async (e) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setImmediate(r));
        seen.push(e.event_id);
        inFlight--;
      },
    });
    sim.start();
    await sleep(600);
    await sim.stop();
    const n = seen.length;
    expect(n).toBeGreaterThan(60);
    expect(n).toBeLessThan(200);
    expect(maxInFlight).toBe(1);
    expect([...seen].sort()).toEqual(seen);
    await sleep(150);
    expect(seen.length).toBe(n); // nothing after stop()
    expect(sim.stats()).toMatchObject({ steps: n, generated: n, published: n, failed: 0 });
  });

  it('slows down instead of piling up when publish is slow, and survives publish errors', async () => {
    let calls = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    const source = quotes();
    const sim = new MarketSimulator({
      ratePerSecond: 5000,
      source,
      publish: async () => {
        calls++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(20);
        inFlight--;
        if (calls % 3 === 0) throw new Error('broker unavailable');
      },
    });
    sim.start();
    await sleep(500);
    await sim.stop();
    expect(maxInFlight).toBe(1);
    expect(calls).toBeLessThan(40); // ~500 ms / 20 ms, not 2500
    expect(source.taken).toBe(calls); // nothing generated ahead of publishing
    expect(sim.stats().failed).toBeGreaterThan(0);
    expect(sim.stats().published + sim.stats().failed).toBe(calls);
  });

  it('publishes the market generator by default', async () => {
    const types = new Set<string>();
    const sim = new MarketSimulator({ ratePerSecond: 500, publish: async (e) => void types.add(e.type) });
    sim.start();
    await sleep(300);
    await sim.stop();
    expect(types.has('quote') && types.has('book')).toBe(true);
  });
});
