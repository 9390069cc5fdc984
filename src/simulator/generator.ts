import type { DomainEvent } from '../domain/events.js';
import { Auctions } from './auctions.js';
import { INSTRUMENTS, type Instrument } from './instruments.js';
import { Market, type Emit, type GenContext } from './market.js';
import { Rng } from './random.js';
import { Trading } from './trading.js';

/**
 * A realistic-looking Indian G-sec market as a pure event source: `next()` returns the next batch of
 * causally related events, a function of the injected `random` and `now` only, so a seeded run is
 * reproducible and testable without timers. The pacing and publishing are the simulator's (simulator.ts).
 */

export const DEFAULT_SIM_USERS: readonly string[] = ['demo-trader', 'alice', 'bob'];

/** Primary dealers and banks that bid in the simulated RBI auctions alongside the demo users. */
const INSTITUTIONAL_BIDDERS: readonly string[] = ['sbi-treasury', 'hdfc-bank', 'icici-pd', 'lic-india', 'pnb-gilts', 'axis-bank'];

/** Relative frequency of each kind of action in `next()` (after the initial warm-up). */
const ACTION_WEIGHTS = {
  quote: 34,
  book: 30,
  trade: 13,
  auction: 8,
  order: 10,
  risk: 5,
} as const;
type Action = keyof typeof ACTION_WEIGHTS;
const TOTAL_WEIGHT = Object.values(ACTION_WEIGHTS).reduce((s, w) => s + w, 0);
/** Events per batch on average, to turn an event rate into a rate of actions. */
const EVENTS_PER_BATCH = 1.6;

/** Where events come from: what the simulator paces and publishes. */
export interface EventSource {
  next(): DomainEvent[];
}

export interface GeneratorOptions {
  /** Events per second the batches will be published at: only to estimate when an auction's bidding closes. */
  ratePerSecond: number;
  /** Users that place orders, hold positions and get risk metrics; default `DEFAULT_SIM_USERS`. */
  users?: readonly string[];
  /** Uniform [0, 1) source; default `Math.random`. Use `seededRandom(n)` for reproducible runs. */
  random?: () => number;
  /** Clock for event timestamps and ids; default `() => new Date()`. */
  now?: () => Date;
}

export class MarketGenerator implements EventSource {
  private readonly ctx: GenContext;
  private readonly market: Market;
  private readonly auctions: Auctions;
  private readonly trading: Trading;
  private eventSeq = 0;
  /** Warm-up: the first batches publish a full quote + book for every instrument, then open an auction. */
  private warmupIndex = 0;

  constructor(opts: GeneratorOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be > 0 (got ${opts.ratePerSecond})`);
    const rng = new Rng(opts.random ?? Math.random);
    const now = opts.now ?? (() => new Date());
    // Makes ids unique across runs: start time + a random tag.
    const tag = `${now().getTime().toString(36)}${rng.int(0, 36 ** 3 - 1).toString(36).padStart(3, '0')}`;
    this.ctx = { rng, now, tag };
    this.market = new Market(this.ctx);
    const users = opts.users && opts.users.length > 0 ? opts.users : DEFAULT_SIM_USERS;
    this.trading = new Trading(this.ctx, this.market, users);
    const auctionActionsPerSecond = (opts.ratePerSecond / EVENTS_PER_BATCH) * (ACTION_WEIGHTS.auction / TOTAL_WEIGHT);
    this.auctions = new Auctions(this.ctx, this.market, [...new Set([...users, ...INSTITUTIONAL_BIDDERS])], auctionActionsPerSecond);
  }

  /** Instruments simulated (static reference data). */
  get instruments(): readonly Instrument[] {
    return INSTRUMENTS;
  }

  /**
   * The next batch of causally related events (1 to ~6: e.g. an order fill brings the public trade,
   * the position and the risk metrics along), never empty.
   */
  next(): DomainEvent[] {
    const ts = this.ctx.now().toISOString();
    const out: DomainEvent[] = [];
    const emit: Emit = <E extends DomainEvent>(e: Omit<E, 'event_id' | 'ts'>) => {
      out.push({ ...e, event_id: this.nextEventId(), ts } as E);
    };
    const markets = this.market.states;
    if (this.warmupIndex < markets.length) {
      this.market.publishAll(markets[this.warmupIndex++] as (typeof markets)[number], emit);
    } else if (this.warmupIndex === markets.length) {
      this.warmupIndex++;
      this.auctions.action(ts, emit);
    } else {
      this.act(this.pickAction(), ts, emit);
      // An action can turn out to change nothing (e.g. a book resize to the same size): quote instead,
      // so every batch has at least one event.
      if (out.length === 0) this.market.quoteAction(emit);
    }
    return out;
  }

  private act(action: Action, ts: string, emit: Emit): void {
    switch (action) {
      case 'quote':
        this.market.quoteAction(emit);
        return;
      case 'book':
        this.market.bookAction(emit);
        return;
      case 'trade':
        this.market.tradeAction(emit);
        return;
      case 'auction':
        this.auctions.action(ts, emit);
        return;
      case 'order':
        this.trading.orderAction(emit);
        return;
      case 'risk':
        this.trading.riskAction(emit);
        return;
    }
  }

  private nextEventId(): string {
    return `sim-${this.ctx.tag}-${(++this.eventSeq).toString().padStart(8, '0')}`;
  }

  private pickAction(): Action {
    let r = this.ctx.rng.random() * TOTAL_WEIGHT;
    for (const [a, w] of Object.entries(ACTION_WEIGHTS) as [Action, number][]) {
      r -= w;
      if (r < 0) return a;
    }
    return 'quote';
  }
}
