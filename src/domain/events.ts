/**
 * The upstream event contract: what pricing, matching, auctions, order management and risk publish.
 * JSON Schemas in `schemas/events/*.json` are the source of truth for validation; these types mirror them.
 */

interface EventBase {
  /** Unique per event; the projector applies each event_id at most once. */
  event_id: string;
  /** ISO-8601 UTC time the upstream system produced the event. */
  ts: string;
}

export interface QuoteEvent extends EventBase {
  type: 'quote';
  isin: string;
  bid: number;
  ask: number;
  bid_size: number;
  ask_size: number;
  bid_yield?: number;
  ask_yield?: number;
}

export interface BookLevel {
  price: number;
  /** Absolute size at this price; 0 removes the level. */
  size: number;
}

export interface BookEvent extends EventBase {
  type: 'book';
  isin: string;
  side: 'bid' | 'ask';
  levels: BookLevel[];
}

export interface TradeEvent extends EventBase {
  type: 'trade';
  isin: string;
  trade_id: string;
  price: number;
  size: number;
  yield?: number;
}

interface AuctionBase extends EventBase {
  auction_id: string;
  isin: string;
}

export interface AuctionOpenedEvent extends AuctionBase {
  type: 'auction.opened';
  /** Notified amount on offer (face value). */
  notified_amount?: number;
  /** Whether bids are by yield (dated securities) or by price (T-bills); default yield. */
  bid_basis?: 'yield' | 'price';
  closes_at?: string;
}

export interface AuctionBidEvent extends AuctionBase {
  type: 'auction.bid';
  bid_id: string;
  user_id: string;
  yield?: number;
  price?: number;
  amount: number;
}

export interface AuctionClosedEvent extends AuctionBase {
  type: 'auction.closed';
}

export interface AuctionAllottedEvent extends AuctionBase {
  type: 'auction.allotted';
  cutoff_yield: number;
  cutoff_price: number;
  allotted_amount: number;
}

export type OrderEventType =
  | 'order.accepted'
  | 'order.partially_filled'
  | 'order.filled'
  | 'order.cancelled'
  | 'order.rejected';

export interface OrderEvent extends EventBase {
  type: OrderEventType;
  user_id: string;
  order_id: string;
  isin: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  filled_quantity?: number;
  reason?: string;
}

export interface PositionEvent extends EventBase {
  type: 'position';
  user_id: string;
  isin: string;
  quantity: number;
  avg_price: number;
  mtm?: number;
}

export interface RiskMetricsEvent extends EventBase {
  type: 'risk.metrics';
  user_id: string;
  exposure: number;
  dv01: number;
  limit_utilisation: number;
}

export interface RiskBreachEvent extends EventBase {
  type: 'risk.breach';
  user_id: string;
  limit: string;
  value: number;
  threshold: number;
  severity: 'info' | 'warning' | 'critical';
}

export type AuctionEvent = AuctionOpenedEvent | AuctionBidEvent | AuctionClosedEvent | AuctionAllottedEvent;

export type DomainEvent =
  | QuoteEvent
  | BookEvent
  | TradeEvent
  | AuctionEvent
  | OrderEvent
  | PositionEvent
  | RiskMetricsEvent
  | RiskBreachEvent;

export type DomainEventType = DomainEvent['type'];
