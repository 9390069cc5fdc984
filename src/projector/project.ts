import type { DomainEvent } from '../domain/events.js';
import { topicOf } from '../domain/topics.js';
import { reduceAuction } from './reducers/auctions.js';
import { reducePosition } from './reducers/portfolio.js';
import { reducePrices } from './reducers/prices.js';
import { reduceRisk } from './reducers/risk.js';
import type { ProjectResult, States } from './reducers/shared.js';
import { reduceOrder } from './reducers/trading.js';

/**
 * Event -> topic changes, purely. The caller loads the states of `topicsFor(event)` (missing = fresh),
 * calls `project`, and commits the changes (the store assigns seqs and de-duplicates by event_id).
 *
 * Contract: an applied event yields exactly one change per topic in `topicsFor(event)`, in that order.
 * An event that does not apply to the current state (auction bid after close, fill of a finished order,
 * duplicate trade_id, …) yields `{ changes: [], rejected: reason }`; the caller dead-letters it.
 */

export type { ProjectResult } from './reducers/shared.js';

export function topicsFor(event: DomainEvent): string[] {
  switch (event.type) {
    case 'quote':
    case 'book':
    case 'trade':
      return [topicOf.prices(event.isin)];
    case 'auction.opened':
    case 'auction.bid':
    case 'auction.closed':
    case 'auction.allotted':
      return [topicOf.auction(event.auction_id)];
    case 'order.accepted':
    case 'order.partially_filled':
    case 'order.filled':
    case 'order.cancelled':
    case 'order.rejected':
      return [topicOf.trading(event.user_id)];
    case 'position':
      return [topicOf.portfolio(event.user_id)];
    case 'risk.metrics':
      return [topicOf.risk(event.user_id)];
    case 'risk.breach':
      return [topicOf.risk(event.user_id), topicOf.riskAlerts(event.user_id)];
  }
}

export function project(event: DomainEvent, states: States): ProjectResult {
  switch (event.type) {
    case 'quote':
    case 'book':
    case 'trade':
      return reducePrices(event, states);
    case 'auction.opened':
    case 'auction.bid':
    case 'auction.closed':
    case 'auction.allotted':
      return reduceAuction(event, states);
    case 'order.accepted':
    case 'order.partially_filled':
    case 'order.filled':
    case 'order.cancelled':
    case 'order.rejected':
      return reduceOrder(event, states);
    case 'position':
      return reducePosition(event, states);
    case 'risk.metrics':
    case 'risk.breach':
      return reduceRisk(event, states);
  }
}
