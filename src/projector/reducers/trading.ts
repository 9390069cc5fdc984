import type { OrderEvent, OrderEventType } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, omit, own, prependBounded, reject, stateOf, type ProjectResult, type States, type Step } from './shared.js';

/**
 * trading.{user_id}: the user's open orders by order_id, and recently finished ones.
 * Lifecycle: accepted -> partially_filled* -> filled | cancelled; rejected from new or open.
 * An order first seen as partially_filled/filled/cancelled is taken as is (its accept may predate our
 * history). Events on a finished order are rejected while it is in `recent`; older ones look unknown.
 */

export const MAX_RECENT_ORDERS = 50;

type OrderStatus = 'accepted' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

type Order = {
  order_id: string;
  isin: string;
  side: 'buy' | 'sell';
  price: number;
  quantity: number;
  filled_quantity: number;
  status: OrderStatus;
  reason: string | null;
  updated_at: string;
};

export type TradingState = {
  user_id: string;
  open: { [order_id: string]: Order };
  /** Finished orders (filled, cancelled, rejected), newest first. */
  recent: Order[];
  updated_at: string | null;
};

const STATUS: Record<OrderEventType, OrderStatus> = {
  'order.accepted': 'accepted',
  'order.partially_filled': 'partially_filled',
  'order.filled': 'filled',
  'order.cancelled': 'cancelled',
  'order.rejected': 'rejected',
};

const FINISHED: ReadonlySet<OrderStatus> = new Set(['filled', 'cancelled', 'rejected']);

const fresh = (user_id: string) => (): TradingState => ({ user_id, open: {}, recent: [], updated_at: null });

export function reduceOrder(event: OrderEvent, states: States): ProjectResult {
  const topic = topicOf.trading(event.user_id);
  return finish({ topic, step: applyOrder(stateOf(states, topic, fresh(event.user_id)), event) });
}

function applyOrder(state: TradingState, e: OrderEvent): Step<TradingState> {
  const status = STATUS[e.type];
  const finished = state.recent.find((o) => o.order_id === e.order_id);
  if (finished) return reject(`order ${e.order_id} already ${finished.status}`);
  const current = own(state.open, e.order_id);
  if (current && status === 'accepted') return reject(`order ${e.order_id} already accepted`);
  const filled = e.filled_quantity ?? (status === 'filled' ? e.quantity : (current?.filled_quantity ?? 0));
  // Fills only grow: a smaller cumulative fill is a stale event overtaken by a later one.
  if (current && filled < current.filled_quantity) {
    return reject(`stale ${e.type} for order ${e.order_id}: filled ${filled} < ${current.filled_quantity}`);
  }
  const order: Order = {
    order_id: e.order_id,
    isin: e.isin,
    side: e.side,
    price: e.price,
    quantity: e.quantity,
    filled_quantity: filled,
    status,
    reason: e.reason ?? null,
    updated_at: e.ts,
  };
  const next: TradingState = FINISHED.has(status)
    ? { ...state, open: omit(state.open, e.order_id), recent: prependBounded(state.recent, order, MAX_RECENT_ORDERS), updated_at: e.ts }
    : { ...state, open: { ...state.open, [e.order_id]: order }, updated_at: e.ts };
  return { state: next, payload: { kind: 'order', event: e.type, order } };
}
