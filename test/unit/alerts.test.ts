import { describe, expect, it } from 'vitest';
import { alertThresholdsSchema, loadConfig, type AlertThresholds } from '../../src/config/config.js';
import { bucketDelta, evaluate, quantile, type AlertSample } from '../../src/observability/alerts.js';
import { LATENCY_BUCKETS_S } from '../../src/observability/metrics.js';

const DEFAULTS = alertThresholdsSchema.parse({});

/** Cumulative latency buckets from a list of observations (seconds). */
function buckets(observations: number[]): { le: number; count: number }[] {
  return [...LATENCY_BUCKETS_S, Number.POSITIVE_INFINITY].map((le) => ({ le, count: observations.filter((o) => o <= le).length }));
}

function sample(at: number, fields: Partial<AlertSample> = {}): AlertSample {
  return {
    at,
    connectionAttempts: 0,
    connectionRefusals: 0,
    messagesSent: 0,
    messagesDropped: 0,
    messagesReceived: 0,
    errors: 0,
    latencyBuckets: buckets([]),
    queueSize: 0,
    ...fields,
  };
}

/** No minimum sample count: these tests are about the rates themselves. */
const judge = (thresholds: AlertThresholds, window: readonly AlertSample[]) => evaluate(thresholds, window, 1);

const names = (alerts: { name: string }[]) => alerts.map((a) => a.name).sort();

describe('evaluate', () => {
  it('raises nothing without traffic, and nothing from an empty or single-sample window', () => {
    expect(judge(DEFAULTS, [])).toEqual([]);
    expect(judge(DEFAULTS, [sample(0)])).toEqual([]);
    expect(judge(DEFAULTS, [sample(0), sample(1000)])).toEqual([]);
  });

  it('uses the increase over the window, not the totals since start', () => {
    // 50 errors long ago; none in this window.
    const window = [sample(0, { errors: 50, messagesReceived: 100 }), sample(60_000, { errors: 50, messagesReceived: 1100 })];
    expect(judge(DEFAULTS, window)).toEqual([]);
  });

  it('connection failure rate: refusals / attempts, strictly above the threshold', () => {
    const at = (refused: number) => [sample(0), sample(1000, { connectionAttempts: 100, connectionRefusals: refused })];
    expect(judge(DEFAULTS, at(5))).toEqual([]); // 5% is not above 5%
    const [alert] = judge(DEFAULTS, at(6));
    expect(alert).toMatchObject({ name: 'connection_failure_rate', value: 0.06, threshold: 0.05 });
  });

  it('message drop rate: dropped / (sent + dropped)', () => {
    const window = [sample(0), sample(1000, { messagesSent: 980, messagesDropped: 20 })];
    expect(judge(DEFAULTS, window)).toEqual([expect.objectContaining({ name: 'message_drop_rate', value: 0.02, threshold: 0.01 })]);
  });

  it('error rate: errors / messages received; a 0 threshold means any error', () => {
    const window = [sample(0), sample(1000, { messagesReceived: 1000, errors: 1 })];
    expect(judge(DEFAULTS, window)).toEqual([]);
    expect(judge({ ...DEFAULTS, max_error_rate: 0 }, window)).toEqual([expect.objectContaining({ name: 'error_rate', value: 0.001 })]);
    // Errors without a counted message (a transport that counts late) never exceed 100%.
    expect(judge(DEFAULTS, [sample(0), sample(1000, { errors: 3 })])[0]).toMatchObject({ name: 'error_rate', value: 1 });
  });

  it('p95 latency from the histogram increase over the window', () => {
    const fast = Array.from({ length: 100 }, () => 0.004);
    const slow = [...Array.from({ length: 90 }, () => 0.004), ...Array.from({ length: 10 }, () => 0.4)];
    expect(judge(DEFAULTS, [sample(0), sample(1000, { latencyBuckets: buckets(fast) })])).toEqual([]);
    const [alert] = judge(DEFAULTS, [sample(0), sample(1000, { latencyBuckets: buckets(slow) })]);
    expect(alert?.name).toBe('p95_latency');
    expect(alert?.value).toBeGreaterThan(250);
    expect(alert?.value).toBeLessThanOrEqual(500);
    // The same slow deliveries before the window do not count.
    const old = buckets(slow);
    expect(judge(DEFAULTS, [sample(0, { latencyBuckets: old }), sample(1000, { latencyBuckets: bucketDelta([], old).map((b, i) => ({ le: b.le, count: b.count + (buckets(fast)[i]?.count ?? 0) })) })])).toEqual([]);
  });

  it('queue size is a gauge: the latest sample alone decides', () => {
    expect(names(judge({ ...DEFAULTS, max_queue_size: 10 }, [sample(0, { queueSize: 50 }), sample(1000, { queueSize: 10 })]))).toEqual([]);
    expect(judge({ ...DEFAULTS, max_queue_size: 10 }, [sample(1000, { queueSize: 11 })])).toEqual([expect.objectContaining({ name: 'queue_size', value: 11, threshold: 10 })]);
  });

  it('reports every breached threshold at once', () => {
    const window = [
      sample(0),
      sample(1000, { connectionAttempts: 10, connectionRefusals: 5, messagesSent: 10, messagesDropped: 10, messagesReceived: 10, errors: 5, queueSize: 5000, latencyBuckets: buckets([2, 2, 2]) }),
    ];
    expect(names(judge(DEFAULTS, window))).toEqual(['connection_failure_rate', 'error_rate', 'message_drop_rate', 'p95_latency', 'queue_size']);
  });
});

describe('evaluate: minimum sample count (ALERT_MIN_SAMPLES)', () => {
  const { ALERT_MIN_SAMPLES } = loadConfig({});

  it('one refused connection out of four is not a 25% failure rate; the same ratio over enough attempts is', () => {
    const attempts = (n: number, refused: number) => [sample(0), sample(1000, { connectionAttempts: n, connectionRefusals: refused })];
    expect(evaluate(DEFAULTS, attempts(4, 1), ALERT_MIN_SAMPLES)).toEqual([]);
    expect(evaluate(DEFAULTS, attempts(ALERT_MIN_SAMPLES - 1, ALERT_MIN_SAMPLES - 1), ALERT_MIN_SAMPLES)).toEqual([]);
    expect(evaluate(DEFAULTS, attempts(ALERT_MIN_SAMPLES, 5), ALERT_MIN_SAMPLES)).toEqual([expect.objectContaining({ name: 'connection_failure_rate', value: 5 / ALERT_MIN_SAMPLES })]);
  });

  it('applies to drop and error rates and to the p95, not to the queue-size gauge', () => {
    const few = [sample(0), sample(1000, { messagesSent: 2, messagesDropped: 2, messagesReceived: 3, errors: 3, latencyBuckets: buckets([2, 2, 2]), queueSize: 5000 })];
    expect(names(evaluate(DEFAULTS, few, 20))).toEqual(['queue_size']);
    expect(names(evaluate(DEFAULTS, few, 4))).toEqual(['message_drop_rate', 'queue_size']); // 4 sent or dropped, 3 received, 3 deliveries
    expect(names(evaluate(DEFAULTS, few, 3))).toEqual(['error_rate', 'message_drop_rate', 'p95_latency', 'queue_size']);
  });
});

describe('quantile', () => {
  it('interpolates inside the bucket like histogram_quantile, undefined when empty', () => {
    expect(quantile(0.95, buckets([]))).toBeUndefined();
    const b = [
      { le: 0.01, count: 50 },
      { le: 0.1, count: 100 },
      { le: Number.POSITIVE_INFINITY, count: 100 },
    ];
    expect(quantile(0.5, b)).toBeCloseTo(0.01);
    expect(quantile(0.75, b)).toBeCloseTo(0.055);
    // Beyond the last finite bucket: its upper bound.
    expect(quantile(0.99, [{ le: 0.1, count: 0 }, { le: Number.POSITIVE_INFINITY, count: 10 }])).toBe(0.1);
  });
});
