import { bookChecksum } from '../book-checksum.js';
import { prependBounded, round } from './shared.js';

/** prices.{isin}: L1 from quotes, the L2 ladder from book updates, and the recent trades. */

export const MAX_BOOK_LEVELS = 20;
export const MAX_TRADES = 50;

export type BookSide = 'bid' | 'ask';

/** A price level (a type, not book-checksum's interface, so states and payloads stay plain JSON objects). */
export type Level = { price: number; size: number };

export type L1 = {
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

export type Trade = { trade_id: string; price: number; size: number; yield: number | null; ts: string };

/** Traded volume and VWAP for one UTC calendar day; resets with the first trade of a new day. */
export type Day = { date: string; volume: number; turnover: number; vwap: number | null; trades: number };

export type Book = {
  bids: Level[];
  asks: Level[];
  /** Of the top levels after the last update (src/domain/book-checksum.ts); 0 for an empty book. */
  checksum: number;
};

export type PricesState = {
  isin: string;
  l1: L1 | null;
  l2: Book;
  /** Newest first. */
  trades: Trade[];
  last_trade: Trade | null;
  day: Day | null;
  updated_at: string | null;
};

export type L1Delta = { kind: 'l1' } & L1;
/** `levels`: absolute sizes, size 0 removes; `checksum`: of the server's book after the update. */
export type L2Delta = { kind: 'l2'; side: BookSide; levels: Level[]; ts: string; checksum: number };
export type TradeDelta = { kind: 'trade'; day_volume: number; day_vwap: number | null } & Trade;
export type PricesDelta = L1Delta | L2Delta | TradeDelta;

export function freshPrices(isin: string): PricesState {
  return { isin, l1: null, l2: { bids: [], asks: [], checksum: bookChecksum([], []) }, trades: [], last_trade: null, day: null, updated_at: null };
}

export function applyPricesDelta(state: PricesState, delta: PricesDelta): PricesState {
  switch (delta.kind) {
    case 'l1': {
      const { kind: _kind, ...l1 } = delta;
      return { ...state, l1, updated_at: delta.ts };
    }
    case 'l2': {
      const key = delta.side === 'bid' ? 'bids' : 'asks';
      // The checksum is the server's claim about the book; a client verifies it with bookMatches().
      const l2 = { ...state.l2, [key]: applyLevels(state.l2[key], delta.levels, delta.side), checksum: delta.checksum };
      return { ...state, l2, updated_at: delta.ts };
    }
    case 'trade': {
      const trade: Trade = { trade_id: delta.trade_id, price: delta.price, size: delta.size, yield: delta.yield, ts: delta.ts };
      const day = addToDay(state.day, trade);
      return { ...state, trades: prependBounded(state.trades, trade, MAX_TRADES), last_trade: trade, day, updated_at: delta.ts };
    }
  }
}

/** Whether a book's levels hash to the checksum it carries (a local book that drifted needs a fresh snapshot). */
export function bookMatches(book: Book): boolean {
  return bookChecksum(book.bids, book.asks) === book.checksum;
}

/**
 * Absolute sizes replace, size 0 removes; the ladder stays sorted best-first and capped at MAX_BOOK_LEVELS.
 * Book events and L2 deltas' `levels` mean the same, so the reducer folds events with it and clients deltas.
 */
export function applyLevels(ladder: readonly Level[], updates: readonly Level[], side: BookSide): Level[] {
  const sizes = new Map(ladder.map((l) => [l.price, l.size]));
  for (const { price, size } of updates) {
    if (size === 0) sizes.delete(price);
    else sizes.set(price, size);
  }
  const best = side === 'bid' ? (a: Level, b: Level) => b.price - a.price : (a: Level, b: Level) => a.price - b.price;
  return [...sizes].map(([price, size]) => ({ price, size })).sort(best).slice(0, MAX_BOOK_LEVELS);
}

/** The day's figures with trade `t` added; a trade on a later UTC date starts a new day. */
export function addToDay(day: Day | null, t: Trade): Day {
  const date = new Date(t.ts).toISOString().slice(0, 10);
  const base = day?.date === date ? day : { date, volume: 0, turnover: 0, trades: 0 };
  const volume = base.volume + t.size;
  const turnover = base.turnover + t.price * t.size;
  return { date, volume, turnover, vwap: volume > 0 ? round(turnover / volume) : null, trades: base.trades + 1 };
}
