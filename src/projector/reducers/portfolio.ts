import { freshPortfolio } from '../../domain/deltas/index.js';
import type { PositionEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, stateOf, type ProjectResult, type States } from './shared.js';

/** portfolio.{user_id}: position events are absolute, so every one applies. */

export function reducePosition(e: PositionEvent, states: States): ProjectResult {
  const topic = topicOf.portfolio(e.user_id);
  const state = stateOf(states, topic, () => freshPortfolio(e.user_id));
  return finish({ topic, state, step: { kind: 'position', isin: e.isin, quantity: e.quantity, avg_price: e.avg_price, mtm: e.mtm ?? null, updated_at: e.ts } });
}
