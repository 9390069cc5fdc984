import { bookChecksum } from '../../domain/book-checksum.js';
import type { BookEvent, BookLevel, QuoteEvent, TradeEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, prependBounded, reject, round, stateOf, type ProjectResult, type States, type Step } from './shared.js';

/** prices.{isin}: L1 from quotes, the L2 ladder from book updates, and the recent trades. */

export const MAX_BOOK_LEVELS = 20;
export const MAX_TRADES = 50;

type Level = { price: number; size: number };

type L1 = {
  bid: number;
  ask: number;
  bid_size: number;
  ask_size: number;
  bid_yield: number | null;
  ask_yield: number | null;
  mid: number;
  spread: number;
  ts: string;
};

type Trade = { trade_id: string; price: number; size: number; yield: number | null; ts: string };

/** Traded volume and VWAP for one UTC calendar day; resets with the first trade of a new day. */
type Day = { date: string; volume: number; turnover: number; vwap: number | null; trades: number };

export type PricesState = {
  isin: string;
  l1: L1 | null;
  /** `checksum`: of the top levels after the last update (src/domain/book-checksum.ts); 0 for an empty book. */
  l2: { bids: Level[]; asks: Level[]; checksum: number };
  /** Newest first. */
  trades: Trade[];
  last_trade: Trade | null;
  day: Day | null;
  updated_at: string | null;
};

export type PriceEvent = QuoteEvent | BookEvent | TradeEvent;

const fresh = (isin: string) => (): PricesState => ({
  isin,
  l1: null,
  l2: { bids: [], asks: [], checksum: bookChecksum([], []) },
  trades: [],
  last_trade: null,
  day: null,
  updated_at: null,
});

export function reducePrices(event: PriceEvent, states: States): ProjectResult {
  const topic = topicOf.prices(event.isin);
  const state = stateOf(states, topic, fresh(event.isin));
  return finish({ topic, step: stepFor(state, event) });
}

function stepFor(state: PricesState, event: PriceEvent): Step<PricesState> {
  switch (event.type) {
    case 'quote':
      return applyQuote(state, event);
    case 'book':
      return applyBook(state, event);
    case 'trade':
      return applyTrade(state, event);
  }
}

function applyQuote(state: PricesState, e: QuoteEvent): Step<PricesState> {
  const l1: L1 = {
    bid: e.bid,
    ask: e.ask,
    bid_size: e.bid_size,
    ask_size: e.ask_size,
    bid_yield: e.bid_yield ?? null,
    ask_yield: e.ask_yield ?? null,
    mid: round((e.bid + e.ask) / 2),
    spread: round(e.ask - e.bid),
    ts: e.ts,
  };
  return { state: { ...state, l1, updated_at: e.ts }, payload: { kind: 'l1', ...l1 } };
}

function applyBook(state: PricesState, e: BookEvent): Step<PricesState> {
  const key = e.side === 'bid' ? 'bids' : 'asks';
  const before = state.l2[key];
  const after = applyLevels(before, e.levels, e.side);
  const l2 = { ...state.l2, [key]: after };
  // Carried by the delta and the snapshot alike: a client verifies its book after every update.
  const checksum = bookChecksum(l2.bids, l2.asks);
  return {
    state: { ...state, l2: { ...l2, checksum }, updated_at: e.ts },
    payload: { kind: 'l2', side: e.side, levels: diffLevels(before, after), ts: e.ts, checksum },
  };
}

/**
 * Absolute sizes replace, size 0 removes; the ladder stays sorted best-first and capped at MAX_BOOK_LEVELS.
 * An L2 delta's `levels` have the same meaning, so a client applies deltas to its book with this too.
 */
export function applyLevels(ladder: readonly Level[], updates: readonly BookLevel[], side: BookEvent['side']): Level[] {
  const sizes = new Map(ladder.map((l) => [l.price, l.size]));
  for (const { price, size } of updates) {
    if (size === 0) sizes.delete(price);
    else sizes.set(price, size);
  }
  const best = side === 'bid' ? (a: Level, b: Level) => b.price - a.price : (a: Level, b: Level) => a.price - b.price;
  return [...sizes].map(([price, size]) => ({ price, size })).sort(best).slice(0, MAX_BOOK_LEVELS);
}

/**
 * What a client holding `before` must apply to reach `after`: new or resized levels, and size-0 entries for
 * levels that went away (removed upstream or pushed out of the capped ladder), so the delta is self-sufficient.
 */
function diffLevels(before: readonly Level[], after: readonly Level[]): Level[] {
  const old = new Map(before.map((l) => [l.price, l.size]));
  const kept = new Set(after.map((l) => l.price));
  const changed = after.filter((l) => old.get(l.price) !== l.size);
  const gone = before.filter((l) => !kept.has(l.price)).map((l) => ({ price: l.price, size: 0 }));
  return [...changed, ...gone];
}

function applyTrade(state: PricesState, e: TradeEvent): Step<PricesState> {
  // A re-published trade under a new event_id would double the day's volume.
  if (state.trades.some((t) => t.trade_id === e.trade_id)) return reject(`duplicate trade_id ${e.trade_id}`);
  const trade: Trade = { trade_id: e.trade_id, price: e.price, size: e.size, yield: e.yield ?? null, ts: e.ts };
  const day = addToDay(state.day, trade);
  return {
    state: { ...state, trades: prependBounded(state.trades, trade, MAX_TRADES), last_trade: trade, day, updated_at: e.ts },
    payload: { kind: 'trade', ...trade, day_volume: day.volume, day_vwap: day.vwap },
  };
}

function addToDay(day: Day | null, t: Trade): Day {
  const date = new Date(t.ts).toISOString().slice(0, 10);
  const base = day?.date === date ? day : { date, volume: 0, turnover: 0, trades: 0 };
  const volume = base.volume + t.size;
  const turnover = base.turnover + t.price * t.size;
  return { date, volume, turnover, vwap: volume > 0 ? round(turnover / volume) : null, trades: base.trades + 1 };
}
