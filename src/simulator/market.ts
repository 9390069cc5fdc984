import type { BookEvent, BookLevel, DomainEvent, QuoteEvent, TradeEvent } from '../domain/events.js';
import { INSTRUMENTS, type Instrument, priceFromYield, yearsToMaturity, yieldFromPrice } from './instruments.js';
import type { Rng } from './random.js';

/**
 * The secondary market of the simulator, pure: per instrument a mid yield following a mean-reverting
 * walk, the book around it, and the quotes, book diffs and trades that describe it. The other
 * generators (auctions, trading) read prices here.
 *
 * Units: prices per ₹100 face (tick 0.0025), yields in percent, sizes in ₹ crore of face value.
 */

/** What a generator is given: the randomness, the clock, and a tag making its ids unique across runs. */
export interface GenContext {
  rng: Rng;
  now: () => Date;
  tag: string;
}

/** Adds an event to the current batch (the generator stamps event_id and ts). */
export type Emit = <E extends DomainEvent>(e: Omit<E, 'event_id' | 'ts'>) => void;

export const LOT = 5; // ₹ crore, NDS-OM market lot
export const CRORE = 1e7;
const PRICE_TICK = 0.0025;
const BOOK_DEPTH = 5;

export const round = (x: number, dp: number): number => {
  const f = 10 ** dp;
  return Math.round(x * f) / f;
};
export const ticksToPrice = (ticks: number): number => round(ticks * PRICE_TICK, 4);

type Side = 'bid' | 'ask';

export interface Level {
  /** Price in ticks of 0.0025 (integers avoid float keys). */
  ticks: number;
  size: number;
}

export interface MarketState {
  inst: Instrument;
  /** Mid yield, percent. */
  yieldPct: number;
  /** Spread in ticks between best bid and best ask. */
  spreadTicks: number;
  /** Distance in ticks between book levels. */
  levelGap: number;
  /** The book as it should be (best first). */
  desired: Record<Side, Level[]>;
  /** The book as last published downstream: ticks -> size. */
  published: Record<Side, Map<number, number>>;
}

export class Market {
  readonly states: MarketState[];
  private tradeSeq = 0;
  /** Market-wide yield shift (percent), a slow mean-reverting random walk shared by all instruments. */
  private curveShift = 0;

  constructor(private readonly ctx: GenContext) {
    const { rng } = ctx;
    this.states = INSTRUMENTS.map((inst) => {
      const m: MarketState = {
        inst,
        yieldPct: inst.baseYield + rng.gauss() * 0.01,
        spreadTicks: inst.benchmark ? 1 + rng.int(0, 2) : 3 + rng.int(0, 6),
        levelGap: inst.benchmark ? 1 : 1 + rng.int(0, 1),
        desired: { bid: [], ask: [] },
        published: { bid: new Map(), ask: new Map() },
      };
      this.rebuildBook(m);
      return m;
    });
  }

  /** Benchmarks are four times as active as the rest. */
  pick(): MarketState {
    const total = this.states.reduce((s, m) => s + (m.inst.benchmark ? 4 : 1), 0);
    let r = this.ctx.rng.random() * total;
    for (const m of this.states) {
      r -= m.inst.benchmark ? 4 : 1;
      if (r < 0) return m;
    }
    return this.states[0] as MarketState;
  }

  of(isin: string): MarketState {
    const m = this.states.find((x) => x.inst.isin === isin);
    if (!m) throw new Error(`unknown isin ${isin}`);
    return m;
  }

  years(m: MarketState): number {
    return yearsToMaturity(m.inst, this.ctx.now());
  }

  midPrice(m: MarketState): number {
    return priceFromYield(m.inst.coupon, this.years(m), m.yieldPct);
  }

  yieldOf(m: MarketState, price: number): number {
    return round(yieldFromPrice(m.inst.coupon, this.years(m), price), 4);
  }

  /** The full quote and book of `m` (warm-up: every instrument once, before anything else). */
  publishAll(m: MarketState, emit: Emit): void {
    this.emitQuote(m, emit);
    this.emitBookDiff(m, 'bid', emit);
    this.emitBookDiff(m, 'ask', emit);
  }

  /** The yield moves, the book follows: a quote and both book diffs. */
  quoteAction(emit: Emit): void {
    const { rng } = this.ctx;
    const m = this.pick();
    // Mean-reverting random walks: a shared curve shift plus the bond's own noise (~0.3 bp a step).
    this.curveShift += -0.01 * this.curveShift + rng.gauss() * 0.0005;
    m.yieldPct += 0.01 * (m.inst.baseYield + this.curveShift - m.yieldPct) + rng.gauss() * 0.003;
    if (rng.chance(0.1)) m.spreadTicks = Math.max(1, Math.min(12, m.spreadTicks + (rng.chance(0.5) ? -1 : 1)));
    const before = m.desired.bid[0]?.ticks;
    this.rebuildBook(m);
    // Refresh top-of-book sizes on every quote.
    for (const side of ['bid', 'ask'] as const) {
      const top = m.desired[side][0];
      if (top && (top.ticks !== before || rng.chance(0.5))) top.size = this.levelSize(0);
    }
    this.publishAll(m, emit);
  }

  /** Resting liquidity changes on one side: a book diff, and a quote when the top changed. */
  bookAction(emit: Emit): void {
    const { rng } = this.ctx;
    const m = this.pick();
    const side: Side = rng.chance(0.5) ? 'bid' : 'ask';
    const levels = m.desired[side];
    const changes = 1 + rng.int(0, 2);
    let topChanged = false;
    for (let i = 0; i < changes; i++) {
      const k = rng.int(0, levels.length - 1);
      const level = levels[k];
      if (!level) continue;
      if (k > 0 && rng.chance(0.25)) {
        // A resting order is pulled and liquidity appears one level further out: the old price gets
        // size 0 (removed) and the book stays BOOK_DEPTH deep.
        levels.splice(k, 1);
        const last = levels[levels.length - 1] as Level;
        levels.push({ ticks: side === 'bid' ? last.ticks - m.levelGap : last.ticks + m.levelGap, size: this.levelSize(BOOK_DEPTH - 1) });
      } else {
        level.size = this.levelSize(k);
        if (k === 0) topChanged = true;
      }
    }
    this.emitBookDiff(m, side, emit);
    if (topChanged) this.emitQuote(m, emit);
  }

  /** Aggressor lifts the offer or hits the bid; occasionally a negotiated (NDS-OM reported) deal inside. */
  tradeAction(emit: Emit): void {
    const { rng } = this.ctx;
    const m = this.pick();
    const bid = m.desired.bid[0] as Level;
    const ask = m.desired.ask[0] as Level;
    const r = rng.random();
    const ticks = r < 0.45 ? bid.ticks : r < 0.9 ? ask.ticks : rng.int(bid.ticks, ask.ticks);
    this.emitTrade(m, ticksToPrice(ticks), LOT * rng.int(1, 10), emit);
  }

  emitTrade(m: MarketState, price: number, size: number, emit: Emit): void {
    emit<TradeEvent>({
      type: 'trade',
      isin: m.inst.isin,
      trade_id: `T${this.ctx.tag}-${(++this.tradeSeq).toString().padStart(7, '0')}`,
      price,
      size,
      yield: this.yieldOf(m, price),
    });
  }

  /** Recomputes the desired book around the current mid, keeping sizes of levels that persist. */
  private rebuildBook(m: MarketState): void {
    const mid = this.midPrice(m) / PRICE_TICK;
    const bestBid = Math.floor(mid - m.spreadTicks / 2);
    const bestAsk = bestBid + m.spreadTicks;
    for (const side of ['bid', 'ask'] as const) {
      const old = new Map(m.desired[side].map((l) => [l.ticks, l.size]));
      const levels: Level[] = [];
      for (let k = 0; k < BOOK_DEPTH; k++) {
        const ticks = side === 'bid' ? bestBid - k * m.levelGap : bestAsk + k * m.levelGap;
        levels.push({ ticks, size: old.get(ticks) ?? this.levelSize(k) });
      }
      m.desired[side] = levels;
    }
  }

  /** Top of book is thinner than depth. */
  private levelSize(depth: number): number {
    const { rng } = this.ctx;
    return LOT * (depth === 0 ? rng.int(1, 10) : rng.int(2, 10 + depth * 4));
  }

  private emitQuote(m: MarketState, emit: Emit): void {
    const bid = m.desired.bid[0] as Level;
    const ask = m.desired.ask[0] as Level;
    const bidPrice = ticksToPrice(bid.ticks);
    const askPrice = ticksToPrice(ask.ticks);
    emit<QuoteEvent>({
      type: 'quote',
      isin: m.inst.isin,
      bid: bidPrice,
      ask: askPrice,
      bid_size: bid.size,
      ask_size: ask.size,
      // Lower price, higher yield: bid_yield > ask_yield.
      bid_yield: this.yieldOf(m, bidPrice),
      ask_yield: this.yieldOf(m, askPrice),
    });
  }

  /** Publishes the difference between the desired and the published book side (absolute sizes, 0 removes). */
  private emitBookDiff(m: MarketState, side: Side, emit: Emit): void {
    const published = m.published[side];
    const desired = new Map(m.desired[side].map((l) => [l.ticks, l.size]));
    const levels: BookLevel[] = [];
    for (const ticks of published.keys()) {
      if (!desired.has(ticks)) levels.push({ price: ticksToPrice(ticks), size: 0 });
    }
    for (const [ticks, size] of desired) {
      if (published.get(ticks) !== size) levels.push({ price: ticksToPrice(ticks), size });
    }
    if (levels.length === 0) return;
    m.published[side] = desired;
    emit<BookEvent>({ type: 'book', isin: m.inst.isin, side, levels });
  }
}
