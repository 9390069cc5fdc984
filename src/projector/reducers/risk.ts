import { freshRisk, freshRiskAlerts } from '../../domain/deltas/index.js';
import type { RiskBreachEvent, RiskMetricsEvent } from '../../domain/events.js';
import { topicOf } from '../../domain/topics.js';
import { finish, stateOf, type ProjectResult, type States } from './shared.js';

/** risk.{user_id} takes metrics and breaches; a breach is also an alert on risk.{user_id}.alerts. */

export function reduceRisk(e: RiskMetricsEvent | RiskBreachEvent, states: States): ProjectResult {
  const topic = topicOf.risk(e.user_id);
  const state = stateOf(states, topic, () => freshRisk(e.user_id));
  if (e.type === 'risk.metrics') {
    return finish({ topic, state, step: { kind: 'metrics', exposure: e.exposure, dv01: e.dv01, limit_utilisation: e.limit_utilisation, ts: e.ts } });
  }
  const breach = { limit: e.limit, value: e.value, threshold: e.threshold, severity: e.severity, ts: e.ts };
  const alertsTopic = topicOf.riskAlerts(e.user_id);
  return finish(
    { topic, state, step: { kind: 'breach', ...breach } },
    // The event_id identifies the alert, so clients can de-duplicate what they display.
    { topic: alertsTopic, type: 'alert', state: stateOf(states, alertsTopic, () => freshRiskAlerts(e.user_id)), step: { kind: 'breach_alert', alert_id: e.event_id, ...breach } },
  );
}
