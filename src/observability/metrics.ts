import type { IncomingHttpHeaders } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { STREAMS } from '../domain/topics.js';
import { ERROR_CODES } from '../protocol/errors.js';
import { isClientMessageKind } from '../protocol/messages.js';
import type { AlertSample } from './alerts.js';

/**
 * Every Prometheus metric of a BondX process, behind typed methods: metric names and label sets live
 * here only. Each instance owns its own Registry (never prom-client's global one), so a test can run
 * several systems in one process, each with its own counters.
 */

/** Delivery latency (upstream event_ts -> send): 1 ms .. 1 s, with a little room either side. */
export const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Projector apply time (validate -> project -> commit) per event. */
export const APPLY_BUCKETS_S = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** The transports connections are labelled with. */
export const TRANSPORTS = ['socketio', 'websocket'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** Why envelopes were not delivered: skipped by conflation, or lost with a slow consumer's disconnect. */
export const DROP_REASONS = ['conflated', 'slow_consumer_disconnect'] as const;
export type DropReason = (typeof DROP_REASONS)[number];


/** Mobile clients identify themselves with these headers (absent: `unknown`). */
export const DEVICE_TYPE_HEADER = 'x-device-type';
export const CLIENT_VERSION_HEADER = 'x-client-version';

/**
 * A label whose values come from outside (headers, disconnect reasons): at most `cap` distinct values
 * are kept, later ones become `other`, so a misbehaving client can not blow up the series count.
 */
export class BoundedLabel {
  private readonly seen = new Set<string>();

  constructor(
    private readonly cap: number,
    private readonly fallback = 'unknown',
  ) {}

  value(raw: string | undefined | null): string {
    const cleaned = (raw ?? '').trim().slice(0, 40).replace(/[^A-Za-z0-9._:/ -]/g, '_');
    if (cleaned === '') return this.fallback;
    if (this.seen.has(cleaned)) return cleaned;
    if (this.seen.size >= this.cap) return 'other';
    this.seen.add(cleaned);
    return cleaned;
  }
}

export interface ClientLabels {
  device_type: string;
  client_version: string;
}

export class Metrics {
  readonly registry = new Registry();

  private readonly connections: Counter<'stream' | 'transport'>;
  private readonly connectionsEstablished: Counter<'stream' | 'transport'>;
  private readonly connectionsClosed: Counter<'stream' | 'transport' | 'reason'>;
  private readonly connectionsActive: Gauge<'stream' | 'transport'>;
  private readonly refusals: Counter<'stream' | 'transport' | 'code'>;
  private readonly authFailures: Counter<'stream' | 'transport'>;
  private readonly clientConnections: Counter<'device_type' | 'client_version'>;
  private readonly clientConnectionsActive: Gauge<'device_type' | 'client_version'>;
  private readonly sent: Counter<'stream' | 'type'>;
  private readonly received: Counter<'stream' | 'type'>;
  private readonly dropped: Counter<'stream' | 'reason'>;
  private readonly latency: Histogram;
  private readonly applyTime: Histogram;
  private readonly ingested: Counter<'origin' | 'outcome'>;
  private readonly deadLetters: Counter<'origin'>;
  private readonly errors: Counter<'stream' | 'code'>;
  private readonly rateLimited: Counter<'stream'>;
  private readonly queueSize: Gauge<'stream'>;
  private readonly alertsActive: Gauge<'name'>;

  private readonly deviceTypes = new BoundedLabel(20);
  private readonly clientVersions = new BoundedLabel(50);
  private readonly closeReasons = new BoundedLabel(30);
  private readonly origins = new BoundedLabel(20);

  private lagSource: (() => number) | undefined;
  private queueSource: (() => ReadonlyMap<string, number>) | undefined;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });

    this.connections = new Counter({ name: 'bondx_connections_total', help: 'Connection attempts (established + refused)', labelNames: ['stream', 'transport'], registers });
    this.connectionsEstablished = new Counter({ name: 'bondx_connections_established_total', help: 'Connections accepted', labelNames: ['stream', 'transport'], registers });
    this.connectionsClosed = new Counter({ name: 'bondx_connections_closed_total', help: 'Connections closed, by reason', labelNames: ['stream', 'transport', 'reason'], registers });
    this.connectionsActive = new Gauge({ name: 'bondx_connections_active', help: 'Open connections', labelNames: ['stream', 'transport'], registers });
    this.refusals = new Counter({ name: 'bondx_connection_refusals_total', help: 'Connections refused, by error code', labelNames: ['stream', 'transport', 'code'], registers });
    this.authFailures = new Counter({ name: 'bondx_auth_failures_total', help: 'Connections refused for a missing or invalid token', labelNames: ['stream', 'transport'], registers });
    this.clientConnections = new Counter({ name: 'bondx_client_connections_total', help: 'Connections accepted, by client device type and version headers', labelNames: ['device_type', 'client_version'], registers });
    this.clientConnectionsActive = new Gauge({ name: 'bondx_client_connections_active', help: 'Open connections, by client device type and version headers', labelNames: ['device_type', 'client_version'], registers });
    this.sent = new Counter({ name: 'bondx_messages_sent_total', help: 'Envelopes sent to clients (a room broadcast counts once per member)', labelNames: ['stream', 'type'], registers });
    this.received = new Counter({ name: 'bondx_messages_received_total', help: 'Messages received from clients', labelNames: ['stream', 'type'], registers });
    this.dropped = new Counter({ name: 'bondx_messages_dropped_total', help: 'Envelopes not delivered to a client', labelNames: ['stream', 'reason'], registers });
    this.latency = new Histogram({ name: 'bondx_delivery_latency_seconds', help: 'Upstream event time to broadcast, per room broadcast', buckets: LATENCY_BUCKETS_S, registers });
    this.applyTime = new Histogram({ name: 'bondx_projector_apply_seconds', help: 'Time to validate, project and commit one event', buckets: APPLY_BUCKETS_S, registers });
    this.ingested = new Counter({ name: 'bondx_events_ingested_total', help: 'Events submitted to the projector, by origin and outcome (applied, duplicate, dead_lettered)', labelNames: ['origin', 'outcome'], registers });
    this.deadLetters = new Counter({ name: 'bondx_dead_letters_total', help: 'Events dead-lettered, by origin', labelNames: ['origin'], registers });
    this.errors = new Counter({ name: 'bondx_errors_total', help: 'Error replies to client messages, by code', labelNames: ['stream', 'code'], registers });
    this.rateLimited = new Counter({ name: 'bondx_rate_limit_violations_total', help: 'Client messages refused by the rate limiter', labelNames: ['stream'], registers });
    this.alertsActive = new Gauge({ name: 'bondx_alerts_active', help: 'Alerts currently raised by this process (1 = active)', labelNames: ['name'], registers });

    this.zeroKnownSeries();

    const metrics = this;
    new Gauge({
      name: 'bondx_projector_lag_messages',
      help: 'Kafka messages not yet applied by this projector (all assigned partitions)',
      registers,
      collect() {
        if (metrics.lagSource) this.set(metrics.lagSource());
      },
    });
    this.queueSize = new Gauge({
      name: 'bondx_queue_size',
      help: 'Largest outbound queue of any connection, per stream (messages)',
      labelNames: ['stream'],
      registers,
      collect() {
        metrics.collectQueueSizes();
      },
    });
  }

  /**
   * Every known label combination of the labelled counters starts at 0: a series that appears only on
   * its first increment leaves rate and ratio panels (and Prometheus' `rate()`) with "No data".
   */
  private zeroKnownSeries(): void {
    const codes = ERROR_CODES;
    for (const stream of STREAMS) {
      this.rateLimited.inc({ stream }, 0);
      for (const reason of DROP_REASONS) this.dropped.inc({ stream, reason }, 0);
      for (const code of codes) this.errors.inc({ stream, code }, 0);
      for (const transport of TRANSPORTS) {
        this.authFailures.inc({ stream, transport }, 0);
        for (const code of codes) this.refusals.inc({ stream, transport, code }, 0);
      }
    }
  }

  // --- connections -------------------------------------------------------------------------------

  connectionAttempted(stream: string, transport: string): void {
    this.connections.inc({ stream, transport });
  }

  /** A connection was accepted; returns its client labels (pass them back to connectionClosed). */
  connectionOpened(stream: string, transport: string, headers: IncomingHttpHeaders): ClientLabels {
    this.connections.inc({ stream, transport });
    this.connectionsEstablished.inc({ stream, transport });
    this.connectionsActive.inc({ stream, transport });
    const client = { device_type: this.deviceTypes.value(header(headers, DEVICE_TYPE_HEADER)), client_version: this.clientVersions.value(header(headers, CLIENT_VERSION_HEADER)) };
    this.clientConnections.inc(client);
    this.clientConnectionsActive.inc(client);
    return client;
  }

  connectionClosed(stream: string, transport: string, reason: string, client: ClientLabels): void {
    this.connectionsClosed.inc({ stream, transport, reason: this.closeReasons.value(reason) });
    this.connectionsActive.dec({ stream, transport });
    this.clientConnectionsActive.dec(client);
  }

  /** A connection attempt refused (counts as an attempt too). */
  connectionRefused(stream: string, transport: string, code: string): void {
    this.connections.inc({ stream, transport });
    this.refusals.inc({ stream, transport, code });
    if (code === 'AUTH_REQUIRED' || code === 'AUTH_INVALID') this.authFailures.inc({ stream, transport });
  }

  // --- messages ----------------------------------------------------------------------------------

  messageSent(stream: string, type: string, count = 1): void {
    if (count > 0) this.sent.inc({ stream, type }, count);
  }

  /** One room broadcast of `type`, reaching `membersByStream` clients. */
  broadcastSent(type: string, membersByStream: ReadonlyMap<string, number>): void {
    for (const [stream, n] of membersByStream) if (n > 0) this.sent.inc({ stream, type }, n);
  }

  /** Delivery latency of one entry broadcast now, from its upstream event time (ms since epoch). */
  observeLatency(eventTsMs: number, nowMs = Date.now()): void {
    if (Number.isFinite(eventTsMs)) this.latency.observe(Math.max(0, nowMs - eventTsMs) / 1000);
  }

  messageReceived(stream: string, type: string): void {
    // Client message kinds are counted as themselves; anything else a client sends as `invalid`.
    this.received.inc({ stream, type: isClientMessageKind(type) ? type : 'invalid' });
  }

  messagesDropped(stream: string, reason: DropReason, count = 1): void {
    if (count > 0) this.dropped.inc({ stream, reason }, count);
  }

  /** An error envelope answered a client message. */
  clientError(stream: string, code: string): void {
    this.errors.inc({ stream, code });
    if (code === 'RATE_LIMIT_EXCEEDED') this.rateLimited.inc({ stream });
  }

  // --- projector ---------------------------------------------------------------------------------

  /** `origin`: `http`, `simulator`, `kafka`, …; `outcome`: applied | duplicate | dead_lettered. */
  eventIngested(origin: string, outcome: string, seconds: number | undefined): void {
    this.ingested.inc({ origin: this.origins.value(origin), outcome });
    if (seconds !== undefined) this.applyTime.observe(seconds);
  }

  /** `source` as in DeadLetter.source (`kafka:bondx.market/2@1234`): counted by its origin part. */
  deadLettered(source: string): void {
    this.deadLetters.inc({ origin: this.origins.value(source.split(':')[0]) });
  }

  /** Where the projector lag gauge reads from on each scrape. */
  projectorLagFrom(source: () => number): void {
    this.lagSource = source;
  }

  /** Where the queue-size gauge reads from on each scrape (largest queue per stream). */
  queueSizesFrom(source: () => ReadonlyMap<string, number>): void {
    this.queueSource = source;
  }

  alertActive(name: string, active: boolean): void {
    this.alertsActive.set({ name }, active ? 1 : 0);
  }

  // --- exposition / sampling ---------------------------------------------------------------------

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** Cumulative counters (and current gauges) the alert evaluator works on. */
  async sample(now = Date.now()): Promise<AlertSample> {
    this.collectQueueSizes();
    const [connections, refusals, sent, dropped, received, errors, latency, queue] = await Promise.all([
      this.connections.get(),
      this.refusals.get(),
      this.sent.get(),
      this.dropped.get(),
      this.received.get(),
      this.errors.get(),
      this.latency.get(),
      this.queueSize.get(),
    ]);
    const buckets: { le: number; count: number }[] = [];
    for (const v of latency.values) {
      if (v.metricName !== 'bondx_delivery_latency_seconds_bucket') continue;
      const le = v.labels.le;
      buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: v.value });
    }
    buckets.sort((a, b) => a.le - b.le);
    return {
      at: now,
      connectionAttempts: sum(connections.values),
      connectionRefusals: sum(refusals.values),
      messagesSent: sum(sent.values),
      messagesDropped: sum(dropped.values),
      messagesReceived: sum(received.values),
      errors: sum(errors.values),
      latencyBuckets: buckets,
      queueSize: queue.values.reduce((m, v) => Math.max(m, v.value), 0),
    };
  }

  private collectQueueSizes(): void {
    if (!this.queueSource) return;
    this.queueSize.reset();
    for (const [stream, size] of this.queueSource()) this.queueSize.set({ stream }, size);
  }
}

function sum(values: { value: number }[]): number {
  return values.reduce((n, v) => n + v.value, 0);
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
