import type { RiskBreachEvent, RiskMetricsEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, prependBounded, stateOf, type ProjectResult, type States } from './shared.js';

/**
 * risk.{user_id}: latest metrics and active breaches by limit name (a newer breach of a limit replaces
 * the older one). risk.{user_id}.alerts: the last MAX_ALERTS breach alerts, delivered as `alert` entries.
 */

export const MAX_ALERTS = 100;

type Metrics = { exposure: number; dv01: number; limit_utilisation: number; ts: string };

type Breach = { limit: string; value: number; threshold: number; severity: RiskBreachEvent['severity']; ts: string };

type Alert = Breach & { alert_id: string };

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

const freshRisk = (user_id: string) => (): RiskState => ({ user_id, metrics: null, breaches: {}, updated_at: null });
const freshAlerts = (user_id: string) => (): RiskAlertsState => ({ user_id, alerts: [], updated_at: null });

export function reduceRisk(e: RiskMetricsEvent | RiskBreachEvent, states: States): ProjectResult {
  const topic = topicOf.risk(e.user_id);
  const state = stateOf(states, topic, freshRisk(e.user_id));
  if (e.type === 'risk.metrics') {
    const metrics: Metrics = { exposure: e.exposure, dv01: e.dv01, limit_utilisation: e.limit_utilisation, ts: e.ts };
    return finish({ topic, step: { state: { ...state, metrics, updated_at: e.ts }, payload: { kind: 'metrics', ...metrics } } });
  }
  const breach: Breach = { limit: e.limit, value: e.value, threshold: e.threshold, severity: e.severity, ts: e.ts };
  const alertsTopic = topicOf.riskAlerts(e.user_id);
  const alerts = stateOf(states, alertsTopic, freshAlerts(e.user_id));
  // The event_id identifies the alert, so clients can de-duplicate what they display.
  const alert: Alert = { alert_id: e.event_id, ...breach };
  return finish(
    {
      topic,
      step: { state: { ...state, breaches: { ...state.breaches, [e.limit]: breach }, updated_at: e.ts }, payload: { kind: 'breach', ...breach } },
    },
    {
      topic: alertsTopic,
      type: 'alert',
      step: {
        state: { ...alerts, alerts: prependBounded(alerts.alerts, alert, MAX_ALERTS), updated_at: e.ts },
        payload: { kind: 'breach_alert', ...alert },
      },
    },
  );
}
