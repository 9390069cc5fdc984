import { bookChecksum } from '../../domain/book-checksum.js';
import { addToDay, applyLevels, freshPrices, type L1Delta, type L2Delta, type Level, type PricesDelta, type PricesState, type TradeDelta } from '../../domain/deltas/index.js';
import { round } from '../../domain/deltas/shared.js';
import type { BookEvent, QuoteEvent, TradeEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, reject, stateOf, type ProjectResult, type States, type Step } from './shared.js';

/** prices.{isin}: quotes become L1 deltas, book updates L2 deltas (with the book's checksum), trades trade deltas. */

export type PriceEvent = QuoteEvent | BookEvent | TradeEvent;

export function reducePrices(event: PriceEvent, states: States): ProjectResult {
  const topic = topicOf.prices(event.isin);
  const state = stateOf(states, topic, () => freshPrices(event.isin));
  return finish({ topic, state, step: stepFor(state, event) });
}

function stepFor(state: PricesState, event: PriceEvent): Step<PricesDelta> {
  switch (event.type) {
    case 'quote':
      return quoteDelta(event);
    case 'book':
      return bookDelta(state, event);
    case 'trade':
      return tradeDelta(state, event);
  }
}

function quoteDelta(e: QuoteEvent): L1Delta {
  return {
    kind: 'l1',
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
}

function bookDelta(state: PricesState, e: BookEvent): L2Delta {
  const key = e.side === 'bid' ? 'bids' : 'asks';
  const before = state.l2[key];
  const after = applyLevels(before, e.levels, e.side);
  const book = { ...state.l2, [key]: after };
  // Carried by the delta and (through applyDelta) the snapshot alike: a client verifies its book after every update.
  return { kind: 'l2', side: e.side, levels: diffLevels(before, after), ts: e.ts, checksum: bookChecksum(book.bids, book.asks) };
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

function tradeDelta(state: PricesState, e: TradeEvent): Step<TradeDelta> {
  // A re-published trade under a new event_id would double the day's volume.
  if (state.trades.some((t) => t.trade_id === e.trade_id)) return reject(`duplicate trade_id ${e.trade_id}`);
  const trade = { trade_id: e.trade_id, price: e.price, size: e.size, yield: e.yield ?? null, ts: e.ts };
  const day = addToDay(state.day, trade);
  return { kind: 'trade', ...trade, day_volume: day.volume, day_vwap: day.vwap };
}
