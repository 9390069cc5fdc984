/**
 * Health is built from named checks (src/runtime/health.ts lists them: redis, kafka_producer,
 * kafka_consumer, projector_lag, alerts, draining) and combined by one pure function, `assessHealth`,
 * into what `/api/v1/ws/health` and `/readyz` answer. A new check is one more entry in that list.
 */

/**
 * - `up`: working. `off`: not part of this process (no Redis in embedded mode, no Kafka, no projector role).
 * - `degraded`: working, but something is off (an alert): reported, traffic still welcome.
 * - `unready`: working, but must not get new traffic (draining): readiness only.
 * - `down`: not working: health `down` (HTTP 503) and not ready.
 */
export type CheckStatus = 'up' | 'off' | 'degraded' | 'unready' | 'down';

export interface HealthCheck {
  name: string;
  status: CheckStatus;
  /** Why, or what was observed (`ping 0.4 ms`, `member of group …`, the alert messages). */
  detail?: string;
  /** ISO time the status last changed, when the source tracks it (Kafka clients). */
  since?: string;
}

export interface Health {
  /** `down` if any check is down, else `degraded` if any is degraded, else `ok`. */
  status: 'ok' | 'degraded' | 'down';
  /** One line per down or degraded check (down first). */
  reasons: string[];
  /** False while any check is down or unready: a balancer should send no new clients. */
  ready: boolean;
  /** One line per unready or down check (unready first); empty when ready. */
  readyReasons: string[];
  checks: HealthCheck[];
}

/** Health and readiness from the checks, in their order. */
export function assessHealth(checks: readonly HealthCheck[]): Health {
  const having = (status: CheckStatus) => checks.filter((c) => c.status === status).map(reason);
  const down = having('down');
  const degraded = having('degraded');
  const unready = having('unready');
  return {
    status: down.length > 0 ? 'down' : degraded.length > 0 ? 'degraded' : 'ok',
    reasons: [...down, ...degraded],
    ready: down.length === 0 && unready.length === 0,
    readyReasons: [...unready, ...down],
    checks: checks.map((c) => ({ ...c })),
  };
}

function reason(check: HealthCheck): string {
  if (check.status === 'down') return `${check.name} is down${check.detail ? ` (${check.detail})` : ''}`;
  return `${check.name}: ${check.detail ?? check.status}`;
}

