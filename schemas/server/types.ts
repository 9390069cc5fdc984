/* Generated from schemas/server/*.json by scripts/server-types.ts (npm run typecheck): do not edit. */

export type ServerEnvelope =
  | SnapshotEnvelope
  | DeltaEnvelope
  | AlertEnvelope
  | BatchEnvelope
  | AckEnvelope
  | PongEnvelope
  | HeartbeatEnvelope
  | ErrorEnvelope;
export type SnapshotEnvelope = {
  type: "snapshot";
  topic: string;
  seq: number;
  ts: string;
  payload: SnapshotState;
  meta: {
    epoch: string;
    resync?: true;
    conflated?: {
      from: number;
      to: number;
    };
  };
  correlation_id: string | null;
};
export type SnapshotState =
  | EmptyState
  | PricesState
  | AuctionState
  | TradingState
  | PortfolioState
  | RiskState
  | RiskAlertsState
  | SystemAlertsSnapshot;
export type EmptyState = Record<string, never>;
export type L1State = L1;
export type TradeState = Trade;
export type SystemAlertsSnapshot = EmptyState | SystemAlertsState;
export type DeltaEnvelope = {
  type: "delta";
  topic: string;
  seq: number;
  ts: string;
  payload: DeltaPayload;
  meta: EntryMeta;
  correlation_id: string;
};
export type DeltaPayload = PricesDelta | AuctionDelta | OrderDelta | PositionDelta | RiskDelta;
export type PricesDelta = L1Delta | L2Delta | TradeDelta;
export type L1Delta = L1 & {
  kind: "l1";
};
export type TradeDelta = Trade & {
  kind: "trade";
  day_volume: number;
  day_vwap: number | null;
};
export type AuctionDelta = AuctionOpenedDelta | AuctionClosedDelta | AuctionBidDelta | AuctionAllottedDelta;
export type AuctionAllottedDelta = Allotment & {
  kind: "auction_allotted";
  status: "allotted";
};
export type PositionDelta = Position & {
  kind: "position";
};
export type RiskDelta = MetricsDelta | BreachDelta;
export type MetricsDelta = Metrics & {
  kind: "metrics";
};
export type BreachDelta = Breach & {
  kind: "breach";
};
export type AlertEnvelope = {
  type: "alert";
  topic: string;
  seq: number;
  ts: string;
  payload: AlertPayload;
  meta: EntryMeta;
  correlation_id: string;
};
export type AlertPayload = BreachAlertDelta | SystemAlertPayload;
export type BreachAlertDelta = Breach & {
  kind: "breach_alert";
  alert_id: string;
};
export type SystemAlertPayload = SystemAlert & {
  kind: "system_alert";
  state: "raised" | "cleared";
  at: string;
};
export type AckPayload = SubscribeAck | UnsubscribeAck | BackgroundModeAck | RefreshAck | ReplayAck | ReplayStopAck;
export type SubscribeAck = ResumedAck | SnapshotAck | SupersededAck;
export type ErrorCode =
  | "AUTH_REQUIRED"
  | "AUTH_INVALID"
  | "TOKEN_EXPIRED"
  | "FORBIDDEN"
  | "INVALID_MESSAGE"
  | "INVALID_TOPIC"
  | "PAYLOAD_TOO_LARGE"
  | "RATE_LIMIT_EXCEEDED"
  | "SLOW_CONSUMER"
  | "TOO_MANY_CONNECTIONS"
  | "SERVER_SHUTTING_DOWN"
  | "DISCONNECTED_BY_OPERATOR"
  | "CONNECTION_ERROR"
  | "INTERNAL_ERROR"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "SERVICE_UNAVAILABLE"
  | "NOT_IMPLEMENTED";
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | {
      [k: string]: JsonValue;
    };

export interface ServerMessages {
  envelope: ServerEnvelope;
  refusal: SocketIoRefusal;
}
export interface PricesState {
  isin: string;
  l1?: L1State | null;
  l2?: Book;
  trades?: TradeState[];
  last_trade?: TradeState | null;
  day: Day | null;
  updated_at: string | null;
}
export interface L1 {
  bid: number;
  ask: number;
  bid_size: number;
  ask_size: number;
  bid_yield: number | null;
  ask_yield: number | null;
  mid: number;
  spread: number;
  ts: string;
}
export interface Book {
  bids: Level[];
  asks: Level[];
  checksum: number;
}
export interface Level {
  price: number;
  size: number;
}
export interface Trade {
  trade_id: string;
  price: number;
  size: number;
  yield: number | null;
  ts: string;
}
export interface Day {
  date: string;
  volume: number;
  turnover: number;
  vwap: number | null;
  trades: number;
}
export interface AuctionState {
  auction_id: string;
  isin: string;
  status: "open" | "closed" | "allotted";
  bid_basis: "yield" | "price";
  notified_amount: number | null;
  closes_at: string | null;
  opened_at: string;
  closed_at: string | null;
  bids: BidTotals;
  histogram: Bucket[];
  allotment: Allotment | null;
  updated_at: string;
}
export interface BidTotals {
  count: number;
  amount: number;
}
export interface Bucket {
  from: number;
  to: number;
  count: number;
  amount: number;
}
export interface Allotment {
  cutoff_yield: number;
  cutoff_price: number;
  allotted_amount: number;
  ts: string;
}
export interface TradingState {
  user_id: string;
  open: {
    [k: string]: Order;
  };
  recent: Order[];
  updated_at: string | null;
}
export interface Order {
  order_id: string;
  isin: string;
  side: "buy" | "sell";
  price: number;
  quantity: number;
  filled_quantity: number;
  status: "accepted" | "partially_filled" | "filled" | "cancelled" | "rejected";
  reason: string | null;
  updated_at: string;
}
export interface PortfolioState {
  user_id: string;
  positions: {
    [k: string]: Position;
  };
  updated_at: string | null;
}
export interface Position {
  isin: string;
  quantity: number;
  avg_price: number;
  mtm: number | null;
  updated_at: string;
}
export interface RiskState {
  user_id: string;
  metrics: Metrics | null;
  breaches: {
    [k: string]: Breach;
  };
  updated_at: string | null;
}
export interface Metrics {
  exposure: number;
  dv01: number;
  limit_utilisation: number;
  ts: string;
}
export interface Breach {
  limit: string;
  value: number;
  threshold: number;
  severity: "info" | "warning" | "critical";
  ts: string;
}
export interface RiskAlertsState {
  user_id: string;
  alerts: (Breach & {
    alert_id: string;
  })[];
  updated_at: string | null;
}
export interface SystemAlertsState {
  active: SystemAlert[];
  updated_at: string;
}
export interface SystemAlert {
  name: "connection_failure_rate" | "message_drop_rate" | "p95_latency" | "queue_size" | "error_rate";
  value: number;
  threshold: number;
  message: string;
  since: string;
  instance: string;
}
export interface L2Delta {
  kind: "l2";
  side: "bid" | "ask";
  levels: Level[];
  ts: string;
  checksum: number;
}
export interface AuctionOpenedDelta {
  kind: "auction_state";
  status: "open";
  auction_id: string;
  isin: string;
  bid_basis: "yield" | "price";
  notified_amount: number | null;
  closes_at: string | null;
  ts: string;
}
export interface AuctionClosedDelta {
  kind: "auction_state";
  status: "closed";
  bids: BidTotals;
  ts: string;
}
export interface AuctionBidDelta {
  kind: "auction_bid";
  bid_basis: "yield" | "price";
  bucket: Bucket;
  bids: BidTotals;
  ts: string;
}
export interface OrderDelta {
  kind: "order";
  event: "order.accepted" | "order.partially_filled" | "order.filled" | "order.cancelled" | "order.rejected";
  order: Order;
}
export interface EntryMeta {
  event_ts: string;
  epoch: string;
  hash?: string;
  replay?: true;
}
export interface BatchEnvelope {
  type: "batch";
  topic: string;
  seq: number;
  ts: string;
  /**
   * @minItems 1
   * @maxItems 1000
   */
  payload: [DeltaEnvelope | AlertEnvelope, ...(DeltaEnvelope | AlertEnvelope)[]];
  meta: {
    count: number;
    first_seq: number;
    last_seq: number;
  };
  correlation_id: null;
}
export interface AckEnvelope {
  type: "ack";
  topic: string | null;
  seq: number | null;
  ts: string;
  payload: AckPayload;
  meta: Record<string, never>;
  correlation_id: string | null;
}
export interface ResumedAck {
  action: "subscribe";
  topic: string;
  resumed_from: number;
  resync: false;
  epoch: string;
}
export interface SnapshotAck {
  action: "subscribe";
  topic: string;
  snapshot_seq: number;
  resync: boolean;
  epoch: string;
}
export interface SupersededAck {
  action: "subscribe";
  topic: string;
  superseded: true;
}
export interface UnsubscribeAck {
  action: "unsubscribe";
  topic: string;
}
export interface BackgroundModeAck {
  action: "background_mode";
  enabled: boolean;
}
export interface RefreshAck {
  action: "refresh";
  expires_at: string;
}
export interface ReplayAck {
  action: "replay";
  topic: string;
  cancelled: boolean;
  epoch: string | null;
  from_seq: number | null;
  to_seq: number | null;
  count: number;
  first_seq: number;
  head_seq: number;
  asked:
    | {
        from_seq: number;
        to_seq: number | null;
      }
    | {
        since: string | null;
        until: string | null;
      };
  missing: ReplayMissing[];
}
export interface ReplayMissing {
  from_seq: number;
  to_seq: number | null;
  reason: "trimmed" | "beyond_head" | "epoch_changed";
}
export interface ReplayStopAck {
  action: "replay_stop";
  stopped: boolean;
}
export interface PongEnvelope {
  type: "pong";
  topic: null;
  seq: null;
  ts: string;
  payload: Record<string, never>;
  meta: Record<string, never>;
  correlation_id: string | null;
}
export interface HeartbeatEnvelope {
  type: "heartbeat";
  topic: null;
  seq: null;
  ts: string;
  payload: {
    heads: {
      [k: string]: number;
    };
  };
  meta: {
    interval_s: number;
  };
  correlation_id: null;
}
export interface ErrorEnvelope {
  type: "error";
  topic: string | null;
  seq: null;
  ts: string;
  payload: {
    error: string;
    code: ErrorCode;
    details: ErrorDetails;
  };
  meta: Record<string, never>;
  correlation_id: string | null;
  error: string;
  code: ErrorCode;
  details: ErrorDetails;
  timestamp: string;
}
export interface ErrorDetails {
  [k: string]: JsonValue;
}
export interface SocketIoRefusal {
  code: ErrorCode;
  details: ErrorDetails;
}
