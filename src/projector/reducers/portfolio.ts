import type { PositionEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, omit, stateOf, type ProjectResult, type States } from './shared.js';

/** portfolio.{user_id}: the user's positions by ISIN. Position events are absolute; quantity 0 closes one. */

type Position = { isin: string; quantity: number; avg_price: number; mtm: number | null; updated_at: string };

export type PortfolioState = {
  user_id: string;
  positions: { [isin: string]: Position };
  updated_at: string | null;
};

const fresh = (user_id: string) => (): PortfolioState => ({ user_id, positions: {}, updated_at: null });

export function reducePosition(e: PositionEvent, states: States): ProjectResult {
  const topic = topicOf.portfolio(e.user_id);
  const state = stateOf(states, topic, fresh(e.user_id));
  const position: Position = { isin: e.isin, quantity: e.quantity, avg_price: e.avg_price, mtm: e.mtm ?? null, updated_at: e.ts };
  const positions = e.quantity === 0 ? omit(state.positions, e.isin) : { ...state.positions, [e.isin]: position };
  return finish({
    topic,
    step: { state: { ...state, positions, updated_at: e.ts }, payload: { kind: 'position', ...position } },
  });
}
