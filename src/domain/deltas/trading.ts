import type { OrderEventType } from '../events.js';
import { omit, prependBounded } from './shared.js';

/** trading.{user_id}: the user's open orders by order_id, and recently finished ones. */

export const MAX_RECENT_ORDERS = 50;

export type OrderStatus = 'accepted' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected';

export type Order = {
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

/** `order`: the order as it is after the event. */
export type OrderDelta = { kind: 'order'; event: OrderEventType; order: Order };

const FINISHED: ReadonlySet<OrderStatus> = new Set(['filled', 'cancelled', 'rejected']);

export function freshTrading(user_id: string): TradingState {
  return { user_id, open: {}, recent: [], updated_at: null };
}

export function applyTradingDelta(state: TradingState, { order }: OrderDelta): TradingState {
  const { order_id, updated_at } = order;
  return FINISHED.has(order.status)
    ? { ...state, open: omit(state.open, order_id), recent: prependBounded(state.recent, order, MAX_RECENT_ORDERS), updated_at }
    : { ...state, open: { ...state.open, [order_id]: order }, updated_at };
}
