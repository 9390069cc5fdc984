import type { RiskBreachEvent } from '../events.js';
import { prependBounded } from './shared.js';

/**
 * risk.{user_id}: latest metrics and active breaches by limit name (a newer breach of a limit replaces
 * the older one). risk.{user_id}.alerts: the last MAX_ALERTS breach alerts, delivered as `alert` entries.
 */

export const MAX_ALERTS = 100;

export type Metrics = { exposure: number; dv01: number; limit_utilisation: number; ts: string };

export type Breach = { limit: string; value: number; threshold: number; severity: RiskBreachEvent['severity']; ts: string };

/** `alert_id`: the breach event's id, so clients can de-duplicate what they display. */
export type Alert = Breach & { alert_id: string };

export type RiskState = {
  user_id: string;
  metrics: Metrics | null;
  breaches: { [limit: string]: Breach };
  updated_at: string | null;
};

export type RiskAlertsState = {
  user_id: string;
  /** Newest first. */
  alerts: Alert[];
  updated_at: string | null;
};

export type MetricsDelta = { kind: 'metrics' } & Metrics;
export type BreachDelta = { kind: 'breach' } & Breach;
export type RiskDelta = MetricsDelta | BreachDelta;
export type BreachAlertDelta = { kind: 'breach_alert' } & Alert;

export function freshRisk(user_id: string): RiskState {
  return { user_id, metrics: null, breaches: {}, updated_at: null };
}

export function freshRiskAlerts(user_id: string): RiskAlertsState {
  return { user_id, alerts: [], updated_at: null };
}

export function applyRiskDelta(state: RiskState, delta: RiskDelta): RiskState {
  switch (delta.kind) {
    case 'metrics': {
      const { kind: _kind, ...metrics } = delta;
      return { ...state, metrics, updated_at: metrics.ts };
    }
    case 'breach': {
      const { kind: _kind, ...breach } = delta;
      return { ...state, breaches: { ...state.breaches, [breach.limit]: breach }, updated_at: breach.ts };
    }
  }
}

export function applyRiskAlertsDelta(state: RiskAlertsState, delta: BreachAlertDelta): RiskAlertsState {
  const { kind: _kind, ...alert } = delta;
  return { ...state, alerts: prependBounded(state.alerts, alert, MAX_ALERTS), updated_at: alert.ts };
}
