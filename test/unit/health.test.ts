import { describe, expect, it } from 'vitest';
import { assessHealth, type HealthCheck } from '../../src/observability/health.js';
import { healthChecks, type HealthReadings } from '../../src/runtime/health.js';

/** How named checks combine into health and readiness (observability/health.ts), and which checks a process reports (runtime/health.ts). */

const up = (name: string): HealthCheck => ({ name, status: 'up' });

describe('assessHealth', () => {
  it.each<[string, HealthCheck[], { status: string; reasons: string[]; ready: boolean; readyReasons: string[] }]>([
    ['no checks', [], { status: 'ok', reasons: [], ready: true, readyReasons: [] }],
    ['all up or off', [up('redis'), { name: 'kafka_producer', status: 'off', detail: 'KAFKA_BROKERS not set' }], { status: 'ok', reasons: [], ready: true, readyReasons: [] }],
    ['a degraded check: degraded, still ready', [up('redis'), { name: 'alerts', status: 'degraded', detail: 'error rate 5% > 2% (5/100)' }], { status: 'degraded', reasons: ['alerts: error rate 5% > 2% (5/100)'], ready: true, readyReasons: [] }],
    ['a down check: down and not ready', [{ name: 'redis', status: 'down', detail: 'Connection is closed.' }], { status: 'down', reasons: ['redis is down (Connection is closed.)'], ready: false, readyReasons: ['redis is down (Connection is closed.)'] }],
    ['down without a detail', [{ name: 'kafka_consumer', status: 'down' }], { status: 'down', reasons: ['kafka_consumer is down'], ready: false, readyReasons: ['kafka_consumer is down'] }],
    ['unready (draining): health stays ok, readiness off', [up('redis'), { name: 'draining', status: 'unready', detail: 'shutting down' }], { status: 'ok', reasons: [], ready: false, readyReasons: ['draining: shutting down'] }],
    [
      'down beats degraded; reasons down first, readiness reasons unready first',
      [{ name: 'alerts', status: 'degraded', detail: 'queue' }, { name: 'draining', status: 'unready', detail: 'shutting down' }, { name: 'redis', status: 'down', detail: 'x' }],
      { status: 'down', reasons: ['redis is down (x)', 'alerts: queue'], ready: false, readyReasons: ['draining: shutting down', 'redis is down (x)'] },
    ],
  ])('%s', (_what, checks, expected) => {
    const health = assessHealth(checks);
    expect(health).toEqual({ ...expected, checks });
  });

  it('returns copies: changing the answer does not change the checks', () => {
    const checks = [up('redis')];
    const health = assessHealth(checks);
    (health.checks[0] as HealthCheck).status = 'down';
    expect(checks[0]?.status).toBe('up');
  });
});

describe('healthChecks', () => {
  const base: HealthReadings = { redis: { name: 'redis', status: 'off', detail: 'in-memory store' }, alerts: up('alerts'), draining: false };
  const names = (checks: HealthCheck[]) => checks.map((c) => c.name);

  it('always reports the same names in the same order, off where they do not apply', () => {
    const checks = healthChecks(base);
    expect(names(checks)).toEqual(['redis', 'kafka_producer', 'kafka_consumer', 'projector_lag', 'alerts', 'draining']);
    expect(checks.slice(1, 4)).toEqual([
      { name: 'kafka_producer', status: 'off', detail: 'KAFKA_BROKERS not set' },
      { name: 'kafka_consumer', status: 'off', detail: 'KAFKA_BROKERS not set' },
      { name: 'projector_lag', status: 'off' },
    ]);
  });

  it('Kafka clients as their own checks, with since and detail; the lag of the projector', () => {
    const since = '2026-01-01T00:00:00.000Z';
    const checks = healthChecks({ ...base, kafka: { producer: { status: 'up', since }, consumer: { status: { status: 'down', since, detail: 'crashed' }, lag: 42 } } });
    expect(checks.slice(1, 4)).toEqual([
      { name: 'kafka_producer', status: 'up', since },
      { name: 'kafka_consumer', status: 'down', since, detail: 'crashed' },
      { name: 'projector_lag', status: 'up', detail: '42 messages' },
    ]);
    expect(assessHealth(checks).reasons).toEqual(['kafka_consumer is down (crashed)']);
  });

  it('a producer without the projector role: the consumer is off for that reason', () => {
    const checks = healthChecks({ ...base, kafka: { producer: { status: 'up', since: 'now' } } });
    expect(checks[2]).toEqual({ name: 'kafka_consumer', status: 'off', detail: 'no projector role' });
  });

  it('draining is unready', () => {
    expect(healthChecks({ ...base, draining: true }).at(-1)).toEqual({ name: 'draining', status: 'unready', detail: 'shutting down' });
  });
});
