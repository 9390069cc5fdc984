import { omit } from './shared.js';

/** portfolio.{user_id}: the user's positions by ISIN. Positions are absolute; quantity 0 closes one. */

export type Position = { isin: string; quantity: number; avg_price: number; mtm: number | null; updated_at: string };

export type PortfolioState = {
  user_id: string;
  positions: { [isin: string]: Position };
  updated_at: string | null;
};

export type PositionDelta = { kind: 'position' } & Position;

export function freshPortfolio(user_id: string): PortfolioState {
  return { user_id, positions: {}, updated_at: null };
}

export function applyPortfolioDelta(state: PortfolioState, delta: PositionDelta): PortfolioState {
  const { kind: _kind, ...position } = delta;
  const positions = position.quantity === 0 ? omit(state.positions, position.isin) : { ...state.positions, [position.isin]: position };
  return { ...state, positions, updated_at: position.updated_at };
}
