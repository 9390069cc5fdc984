import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { AlertThresholds } from '../config/config.js';
import type { JsonObject } from '../domain/json.js';
import { SYSTEM_ALERTS_TOPIC } from '../domain/topics.js';
import { HeadMismatch, type TopicStore } from '../store/topic-store.js';
import type { HealthCheck } from './health.js';
import type { Logger } from './logger.js';

/**
 * Threshold alerts. `evaluate` is pure: it compares rates over a window of cumulative samples with
 * the configured thresholds (ALERT_THRESHOLDS_JSON). `AlertMonitor` samples a process's metrics at an
 * interval, keeps the active alerts, and on every raise/clear logs, flips health to `degraded`, and
 * commits an `alert` entry on `system.alerts` (sequenced and resumable like every topic; operators only).
 */

/** Cumulative counters at one instant (counters only grow within a process). */
export interface AlertSample {
  /** ms since epoch */
  at: number;
  connectionAttempts: number;
  connectionRefusals: number;
  messagesSent: number;
  messagesDropped: number;
  messagesReceived: number;
  errors: number;
  /** Cumulative delivery-latency histogram buckets (seconds), ascending `le`, last is +Inf. */
  latencyBuckets: { le: number; count: number }[];
  /** Current largest outbound queue (a gauge, not a counter). */
  queueSize: number;
}

export type AlertName = 'connection_failure_rate' | 'message_drop_rate' | 'p95_latency' | 'queue_size' | 'error_rate';

export interface Alert {
  name: AlertName;
  /** Observed value: a ratio 0..1, milliseconds (p95_latency) or messages (queue_size). */
  value: number;
  threshold: number;
  message: string;
}

/**
 * Alerts breached over `window` (oldest sample first): rates are the counter increase between the
 * first and the last sample. A rate (and the p95) is only judged on at least `minSamples` observations
 * in the window (attempts, messages, deliveries): one refusal among four attempts is noise, not 25%.
 * A value breaches when strictly above its threshold, so a threshold of 0 means "any at all".
 */
export function evaluate(thresholds: AlertThresholds, window: readonly AlertSample[], minSamples: number): Alert[] {
  const last = window[window.length - 1];
  if (!last) return [];
  const alerts: Alert[] = [];
  if (last.queueSize > thresholds.max_queue_size) {
    alerts.push({ name: 'queue_size', value: last.queueSize, threshold: thresholds.max_queue_size, message: `outbound queue ${last.queueSize} > ${thresholds.max_queue_size} messages` });
  }
  const first = window[0];
  if (!first || first === last) return alerts;
  const d = (key: 'connectionAttempts' | 'connectionRefusals' | 'messagesSent' | 'messagesDropped' | 'messagesReceived' | 'errors') => Math.max(0, last[key] - first[key]);

  const ratio = (name: AlertName, part: number, whole: number, threshold: number, what: string) => {
    if (whole <= 0 || whole < minSamples) return;
    const value = part / whole;
    if (value > threshold) alerts.push({ name, value: round(value), threshold, message: `${what} ${pct(value)} > ${pct(threshold)} (${part}/${whole})` });
  };
  ratio('connection_failure_rate', d('connectionRefusals'), d('connectionAttempts'), thresholds.max_connection_failure_rate, 'connection failure rate');
  ratio('message_drop_rate', d('messagesDropped'), d('messagesSent') + d('messagesDropped'), thresholds.max_message_drop_rate, 'message drop rate');
  ratio('error_rate', d('errors'), Math.max(d('messagesReceived'), d('errors')), thresholds.max_error_rate, 'error rate');

  const deliveries = bucketDelta(first.latencyBuckets, last.latencyBuckets);
  const p95 = (deliveries[deliveries.length - 1]?.count ?? 0) >= minSamples ? quantile(0.95, deliveries) : undefined;
  if (p95 !== undefined && p95 * 1000 > thresholds.max_p95_latency_ms) {
    const ms = round(p95 * 1000);
    alerts.push({ name: 'p95_latency', value: ms, threshold: thresholds.max_p95_latency_ms, message: `p95 delivery latency ${ms} ms > ${thresholds.max_p95_latency_ms} ms` });
  }
  return alerts;
}

/** Per-bucket increase between two cumulative histograms with the same buckets. */
export function bucketDelta(before: readonly { le: number; count: number }[], after: readonly { le: number; count: number }[]): { le: number; count: number }[] {
  const prior = new Map(before.map((b) => [b.le, b.count]));
  return after.map((b) => ({ le: b.le, count: Math.max(0, b.count - (prior.get(b.le) ?? 0)) }));
}

/**
 * Quantile of a cumulative histogram, interpolating linearly inside the bucket (as Prometheus'
 * histogram_quantile does); undefined when empty. Beyond the last finite bucket: that bucket's bound.
 */
export function quantile(q: number, buckets: readonly { le: number; count: number }[]): number | undefined {
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const b of buckets) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return lowerBound;
      const inBucket = b.count - lowerCount;
      return inBucket <= 0 ? b.le : lowerBound + ((b.le - lowerBound) * (rank - lowerCount)) / inBucket;
    }
    lowerBound = Number.isFinite(b.le) ? b.le : lowerBound;
    lowerCount = b.count;
  }
  return lowerBound;
}

const round = (n: number) => Math.round(n * 10_000) / 10_000;
const pct = (n: number) => `${round(n * 100)}%`;

// --- monitor ---------------------------------------------------------------------------------------

/** Commits of one alert change refused because other processes committed first, before giving up. */
const MAX_PUBLISH_ATTEMPTS = 50;

export interface ActiveAlert extends Alert {
  since: string;
}

/**
 * What the monitor reads and marks on a process's metrics (observability/metrics.ts implements it).
 * Declared here, by its consumer, so metrics.ts depends on this module and not back.
 */
export interface AlertMetrics {
  /** Cumulative counters now. */
  sample(now: number): Promise<AlertSample>;
  alertActive(name: AlertName, active: boolean): void;
}

export interface AlertMonitorOptions {
  metrics: AlertMetrics;
  thresholds: AlertThresholds;
  store: TopicStore;
  log: Logger;
  /** How often Metrics are sampled and alerts evaluated. */
  intervalMs: number;
  /** Rates are computed over (at least) this much time. */
  windowMs: number;
  /** Fewest observations in the window a rate or the p95 is judged on. */
  minSamples: number;
  /** Names this process in published alerts (several gateways publish to the same topic). */
  instance?: string;
}

export class AlertMonitor {
  readonly instance: string;
  private readonly samples: AlertSample[] = [];
  private readonly active = new Map<AlertName, ActiveAlert>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /** Commits to system.alerts, one after the other, in raise/clear order. */
  private publishing: Promise<void> = Promise.resolve();

  constructor(private readonly opts: AlertMonitorOptions) {
    this.instance = opts.instance ?? `${hostname()}:${process.pid}`;
  }

  start(): void {
    if (this.timer) return;
    // The baseline: whatever happens from now on is inside the first window.
    this.ticking = this.tick().catch((err: unknown) => this.opts.log.error({ err }, 'alert evaluation failed'));
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.tick()).catch((err: unknown) => this.opts.log.error({ err }, 'alert evaluation failed'));
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    await this.publishing;
  }

  /** Samples, evaluates, and raises/clears what changed. Exposed for tests and a manual check. */
  async tick(now = Date.now()): Promise<void> {
    this.samples.push(await this.opts.metrics.sample(now));
    // Keep one sample at or before the window's start, so rates always span the whole window.
    while (this.samples.length > 2 && (this.samples[1] as AlertSample).at <= now - this.opts.windowMs) this.samples.shift();
    const breached = new Map(evaluate(this.opts.thresholds, this.samples, this.opts.minSamples).map((a) => [a.name, a]));
    for (const [name, alert] of breached) {
      const current = this.active.get(name);
      if (current) {
        current.value = alert.value;
        current.message = alert.message;
        continue;
      }
      const raised: ActiveAlert = { ...alert, since: new Date(now).toISOString() };
      this.active.set(name, raised);
      this.changed(raised, 'raised');
    }
    for (const [name, alert] of [...this.active]) {
      if (breached.has(name)) continue;
      this.active.delete(name);
      this.changed(alert, 'cleared');
    }
  }

  activeAlerts(): ActiveAlert[] {
    return [...this.active.values()].map((a) => ({ ...a }));
  }

  /** The `alerts` health check: degraded while any alert is active, with their messages. */
  check(): HealthCheck {
    const messages = [...this.active.values()].map((a) => a.message);
    return messages.length > 0 ? { name: 'alerts', status: 'degraded', detail: messages.join('; ') } : { name: 'alerts', status: 'up' };
  }

  /** Resolves once everything raised/cleared so far is committed to system.alerts. */
  flushed(): Promise<void> {
    return this.publishing;
  }

  private changed(alert: ActiveAlert, state: 'raised' | 'cleared'): void {
    const { log, metrics } = this.opts;
    metrics.alertActive(alert.name, state === 'raised');
    if (state === 'raised') log.warn({ alert: alert.name, value: alert.value, threshold: alert.threshold }, `alert raised: ${alert.message}`);
    else log.info({ alert: alert.name, value: alert.value, threshold: alert.threshold }, `alert cleared: ${alert.name}`);
    const at = new Date().toISOString();
    const active = this.activeAlerts();
    this.publishing = this.publishing
      .then(() => this.publish(alert, state, at, active))
      .catch((err: unknown) => log.error({ err, alert: alert.name }, 'publishing alert to system.alerts failed'));
  }

  /**
   * Several processes publish to system.alerts, each owning only its own entries of the state's
   * `active` list. The commit names the head seq its state was built on, so the store refuses it
   * (HeadMismatch) when another process committed in between; it is then rebuilt on the newer state.
   * Without that, two processes reading the same state would each drop the other's alerts.
   */
  private async publish(alert: ActiveAlert, state: 'raised' | 'cleared', at: string, active: ActiveAlert[]): Promise<void> {
    const { store } = this.opts;
    const ours: JsonObject[] = active.map((a) => ({ name: a.name, value: a.value, threshold: a.threshold, message: a.message, since: a.since, instance: this.instance }));
    for (let attempt = 1; ; attempt++) {
      const head = (await store.states([SYSTEM_ALERTS_TOPIC])).get(SYSTEM_ALERTS_TOPIC);
      const others = Array.isArray(head?.state.active) ? head.state.active.filter((a) => !(a && typeof a === 'object' && !Array.isArray(a) && a.instance === this.instance)) : [];
      try {
        await store.commit({
          eventId: `alert-${randomUUID()}`,
          eventTs: at,
          expectedHeads: new Map([[SYSTEM_ALERTS_TOPIC, head ?? null]]),
          changes: [
            {
              topic: SYSTEM_ALERTS_TOPIC,
              type: 'alert',
              payload: { kind: 'system_alert', name: alert.name, state, value: alert.value, threshold: alert.threshold, message: alert.message, since: alert.since, instance: this.instance, at },
              state: { active: [...others, ...ours], updated_at: at },
            },
          ],
        });
        return;
      } catch (err) {
        // Each refusal means another process's commit got in: with a handful of writers this ends fast.
        if (!(err instanceof HeadMismatch) || attempt >= MAX_PUBLISH_ATTEMPTS) throw err;
      }
    }
  }
}
