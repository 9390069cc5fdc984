import { freshTrading, type Order, type OrderDelta, type OrderStatus, type TradingState } from '../../domain/deltas/index.js';
import type { OrderEvent, OrderEventType } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, own, reject, stateOf, type ProjectResult, type States, type Step } from './shared.js';

/**
 * trading.{user_id}: which order events apply. Lifecycle: accepted -> partially_filled* -> filled | cancelled;
 * rejected from new or open. An order first seen as partially_filled/filled/cancelled is taken as is (its
 * accept may predate our history). Events on a finished order are rejected while it is in `recent`; older
 * ones look unknown.
 */

const STATUS: Record<OrderEventType, OrderStatus> = {
  'order.accepted': 'accepted',
  'order.partially_filled': 'partially_filled',
  'order.filled': 'filled',
  'order.cancelled': 'cancelled',
  'order.rejected': 'rejected',
};

export function reduceOrder(event: OrderEvent, states: States): ProjectResult {
  const topic = topicOf.trading(event.user_id);
  const state = stateOf(states, topic, () => freshTrading(event.user_id));
  return finish({ topic, state, step: orderDelta(state, event) });
}

function orderDelta(state: TradingState, e: OrderEvent): Step<OrderDelta> {
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
  return { kind: 'order', event: e.type, order };
}
