import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, SYSTEM_ALERTS_TOPIC } from '../../src/domain/topics.js';
import { DROP_REASONS, TRANSPORTS } from '../../src/observability/metrics.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { connect, Recorder, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { health, startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * Metrics, health and alerts end to end: real Socket.IO traffic and HTTP publishing against a real
 * system, `/metrics` scraped over HTTP, alerts received by an operator subscribed to `system.alerts`.
 */

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;

const sockets: Socket[] = [];
const systems: TestSystem[] = [];

afterAll(async () => {
  for (const s of sockets) s.close();
  for (const system of systems) await system.close();
});

// --- Prometheus text format ------------------------------------------------------------------------

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = (l[2] as string).replace(/\\"/g, '"');
    out.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return out;
}

class Scrape {
  constructor(readonly series: Series[]) {}
  /** Sum of every series of `name` whose labels include `labels`. */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.series.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
  }
  has(name: string): boolean {
    return this.series.some((s) => s.name === name);
  }
}

async function scrape(system: TestSystem): Promise<Scrape> {
  const res = await fetch(system.metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  return new Scrape(parseMetrics(await res.text()));
}

// --- helpers ---------------------------------------------------------------------------------------

async function publish(system: TestSystem, events: unknown): Promise<number> {
  const res = await fetch(`${system.server.url}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${system.token('upstream', 'publisher')}` },
    body: JSON.stringify(events),
  });
  await res.arrayBuffer();
  return res.status;
}

// --- counters --------------------------------------------------------------------------------------

describe('/metrics', () => {
  let system: TestSystem;

  beforeAll(async () => {
    // Alerts evaluated rarely here: this block is about counters.
    system = await startTestSystem({ ALERT_EVAL_INTERVAL_MS: '60000' });
    systems.push(system);
  });

  it('serves the Prometheus text format on its own port, with Node process metrics', async () => {
    expect(new URL(system.metricsUrl).port).not.toBe(new URL(system.server.url).port);
    const s = await scrape(system);
    expect(s.has('process_cpu_user_seconds_total')).toBe(true);
    expect(s.has('nodejs_eventloop_lag_seconds')).toBe(true);
    expect(s.has('bondx_delivery_latency_seconds_bucket')).toBe(true);
    expect((await fetch(system.metricsUrl.replace('/metrics', '/nope'))).status).toBe(404);
  });

  it('labelled counters have a 0 series for every known label value before their first increment', async () => {
    const fresh = await startTestSystem({ ALERT_EVAL_INTERVAL_MS: '60000' });
    systems.push(fresh);
    const s = await scrape(fresh);
    const zero = (name: string, labels: Record<string, string>) => {
      const found = s.series.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
      expect(found, `${name} ${JSON.stringify(labels)}`).toHaveLength(1);
      expect(found[0]?.value).toBe(0);
    };
    for (const stream of STREAMS) {
      zero('bondx_rate_limit_violations_total', { stream });
      for (const reason of DROP_REASONS) zero('bondx_messages_dropped_total', { stream, reason });
      for (const code of ERROR_CODES) zero('bondx_errors_total', { stream, code });
      for (const transport of TRANSPORTS) {
        zero('bondx_auth_failures_total', { stream, transport });
        for (const code of ERROR_CODES) zero('bondx_connection_refusals_total', { stream, transport, code });
      }
    }
  });

  it('counts connections, refusals, messages, errors, ingest and latency by the exact amounts', async () => {
    const before = await scrape(system);

    // One mobile-identified connection, subscribed to a price topic.
    const socket = await connect(system.server.url, '/market', system.token('alice'), { headers: { 'x-device-type': 'ios', 'x-client-version': '2.3.1' } });
    sockets.push(socket);
    const rec = new Recorder(socket);
    const ack = await request(socket, 'subscribe', { type: 'subscribe', topic: TOPIC });
    expect(ack.type).toBe('ack');
    await waitFor(() => rec.of(TOPIC, 'snapshot').length === 1, 5000, 'snapshot');

    // Three events through the HTTP API reach the subscriber as three deltas; one bad event is dead-lettered.
    expect(await publish(system, [quote(ISIN, 99.1, 99.2), quote(ISIN, 99.2, 99.3), quote(ISIN, 99.3, 99.4)])).toBe(200);
    expect(await publish(system, [{ event_id: 'bad-1', type: 'quote', isin: 'nope' }])).toBe(422);
    await waitFor(() => rec.of(TOPIC, 'delta').length === 3, 5000, 'three deltas');

    // An invalid message and a ping.
    const invalid = await request(socket, 'bogus', { hello: 1 });
    expect(invalid.type).toBe('error');
    expect((await request(socket, 'ping', { type: 'ping' })).type).toBe('pong');

    // A refused connection (bad token).
    await expect(connect(system.server.url, '/market', 'not-a-jwt')).rejects.toMatchObject({ data: { code: 'AUTH_INVALID' } });

    const during = await scrape(system);
    const d = (name: string, labels: Record<string, string> = {}) => during.value(name, labels) - before.value(name, labels);
    const market = { stream: 'market', transport: 'socketio' };

    expect(d('bondx_connections_total', market)).toBe(2);
    expect(d('bondx_connections_established_total', market)).toBe(1);
    expect(d('bondx_connections_active', market)).toBe(1);
    expect(d('bondx_connection_refusals_total', { ...market, code: 'AUTH_INVALID' })).toBe(1);
    expect(d('bondx_auth_failures_total', market)).toBe(1);
    expect(d('bondx_client_connections_total', { device_type: 'ios', client_version: '2.3.1' })).toBe(1);
    expect(d('bondx_client_connections_active', { device_type: 'ios', client_version: '2.3.1' })).toBe(1);

    expect(d('bondx_messages_received_total', { stream: 'market', type: 'subscribe' })).toBe(1);
    expect(d('bondx_messages_received_total', { stream: 'market', type: 'ping' })).toBe(1);
    expect(d('bondx_messages_received_total', { stream: 'market', type: 'invalid' })).toBe(1);
    expect(d('bondx_errors_total', { stream: 'market', code: 'INVALID_MESSAGE' })).toBe(1);
    expect(d('bondx_errors_total')).toBe(1);

    expect(d('bondx_messages_sent_total', { stream: 'market', type: 'snapshot' })).toBe(1);
    expect(d('bondx_messages_sent_total', { stream: 'market', type: 'delta' })).toBe(3);
    expect(d('bondx_messages_dropped_total')).toBe(0);
    // One latency sample per broadcast (one room here), all well under a second.
    expect(d('bondx_delivery_latency_seconds_count')).toBe(3);
    expect(d('bondx_delivery_latency_seconds_bucket', { le: '1' })).toBe(3);

    expect(d('bondx_events_ingested_total', { origin: 'http', outcome: 'applied' })).toBe(3);
    expect(d('bondx_events_ingested_total', { origin: 'http', outcome: 'dead_lettered' })).toBe(1);
    expect(d('bondx_dead_letters_total', { origin: 'http' })).toBe(1);
    expect(d('bondx_projector_apply_seconds_count')).toBe(3);

    // Disconnecting is counted with its reason, and the active gauges go back down.
    socket.close();
    await waitFor(async () => (await scrape(system)).value('bondx_connections_active', market) === before.value('bondx_connections_active', market), 5000, 'active back down');
    const after = await scrape(system);
    expect(after.value('bondx_connections_closed_total', { ...market, reason: 'client namespace disconnect' }) - before.value('bondx_connections_closed_total', { ...market, reason: 'client namespace disconnect' })).toBe(1);
    expect(after.value('bondx_client_connections_active', { device_type: 'ios', client_version: '2.3.1' })).toBe(0);
  });

  it('counts a broadcast once per member, and latency once per broadcast', async () => {
    const token = system.token('bob');
    const a = await connect(system.server.url, '/market', token);
    const b = await connect(system.server.url, '/market', token);
    sockets.push(a, b);
    const recA = new Recorder(a);
    const recB = new Recorder(b);
    await request(a, 'subscribe', { type: 'subscribe', topic: TOPIC });
    await request(b, 'subscribe', { type: 'subscribe', topic: TOPIC });
    const before = await scrape(system);
    expect(await publish(system, [quote(ISIN, 98.1, 98.2), quote(ISIN, 98.2, 98.3)])).toBe(200);
    await waitFor(() => recA.of(TOPIC, 'delta').length === 2 && recB.of(TOPIC, 'delta').length === 2, 5000, 'deltas on both');
    const after = await scrape(system);
    expect(after.value('bondx_messages_sent_total', { stream: 'market', type: 'delta' }) - before.value('bondx_messages_sent_total', { stream: 'market', type: 'delta' })).toBe(4);
    expect(after.value('bondx_delivery_latency_seconds_count') - before.value('bondx_delivery_latency_seconds_count')).toBe(2);
  });

  it('uses bounded label values for client headers', async () => {
    const socket = await connect(system.server.url, '/mobile', system.token('carol'), { headers: { 'x-device-type': 'android', 'x-client-version': 'weird"value{}' } });
    sockets.push(socket);
    const s = await scrape(system);
    const series = s.series.filter((x) => x.name === 'bondx_client_connections_total' && x.labels.device_type === 'android');
    expect(series).toHaveLength(1);
    expect(series[0]?.labels.client_version).toBe('weird_value__');
    socket.close();
  });
});

// --- alerts ----------------------------------------------------------------------------------------

describe('alerts', () => {
  let system: TestSystem;

  beforeAll(async () => {
    // Any client error breaches the error rate; a 1 s window clears it soon after. Connection failures never alert here.
    system = await startTestSystem({
      ALERT_THRESHOLDS_JSON: JSON.stringify({ max_error_rate: 0, max_connection_failure_rate: 1 }),
      ALERT_EVAL_INTERVAL_MS: '100',
      ALERT_WINDOW_MS: '1000',
      ALERT_MIN_SAMPLES: '1',
    });
    systems.push(system);
  });

  it('raises an alert on a real breach (operator receives it, health degraded), then clears it', async () => {
    expect((await health(system.server.url)).status).toBe('ok');
    const operator = await connect(system.server.url, '/risk', system.token('ops', 'operator'));
    sockets.push(operator);
    const ops = new Recorder(operator);
    expect((await request(operator, 'subscribe', { type: 'subscribe', topic: SYSTEM_ALERTS_TOPIC })).type).toBe('ack');

    const trader = await connect(system.server.url, '/market', system.token('erin'));
    sockets.push(trader);
    expect((await request(trader, 'subscribe', { type: 'subscribe', topic: 'prices.!!' })).type).toBe('error');

    const alerts = () => ops.of(SYSTEM_ALERTS_TOPIC, 'alert').filter((e) => (e.payload as { name: string }).name === 'error_rate');
    await waitFor(() => alerts().length >= 1, 5000, 'error_rate raised');
    const raised = alerts()[0] as Envelope;
    expect(raised.payload).toMatchObject({ kind: 'system_alert', name: 'error_rate', state: 'raised', threshold: 0 });
    // One error among the messages received in the window (the operator's subscribe, the bad one).
    expect((raised.payload as { value: number }).value).toBeGreaterThan(0);
    expect(raised.seq).toBeGreaterThanOrEqual(1);

    const degraded = await health(system.server.url);
    expect(degraded.status).toBe('degraded');
    expect(degraded.alerts.map((a) => a.name)).toContain('error_rate');
    expect(degraded.reasons.join(' ')).toContain('error rate');
    const scraped = await scrape(system);
    expect(scraped.value('bondx_alerts_active', { name: 'error_rate' })).toBe(1);

    // No more errors: once the window has slid past the error, the alert clears.
    await waitFor(() => alerts().length >= 2, 5000, 'error_rate cleared');
    const cleared = alerts()[1] as Envelope;
    expect(cleared.payload).toMatchObject({ name: 'error_rate', state: 'cleared' });
    expect(cleared.seq).toBe((raised.seq as number) + 1);
    await waitFor(async () => (await health(system.server.url)).status === 'ok', 5000, 'health ok');
    const ok = await health(system.server.url);
    expect(ok.reasons).toEqual([]);
    expect(ok.alerts).toEqual([]);
    expect((await scrape(system)).value('bondx_alerts_active', { name: 'error_rate' })).toBe(0);

    // The topic is resumable like any other: a late operator gets the history and an empty active list.
    const late = await connect(system.server.url, '/risk', system.token('ops2', 'operator'));
    sockets.push(late);
    const lateRec = new Recorder(late);
    await request(late, 'subscribe', { type: 'subscribe', topic: SYSTEM_ALERTS_TOPIC, resume_from_seq: (raised.seq as number) - 1 });
    await waitFor(() => lateRec.of(SYSTEM_ALERTS_TOPIC, 'alert').length >= 2, 5000, 'replayed alerts');
    const snap = await connect(system.server.url, '/risk', system.token('ops3', 'operator'));
    sockets.push(snap);
    const snapRec = new Recorder(snap);
    await request(snap, 'subscribe', { type: 'subscribe', topic: SYSTEM_ALERTS_TOPIC });
    await waitFor(() => snapRec.of(SYSTEM_ALERTS_TOPIC, 'snapshot').length === 1, 5000, 'snapshot');
    expect((snapRec.of(SYSTEM_ALERTS_TOPIC, 'snapshot')[0]?.payload as { active: unknown[] } | undefined)?.active).toEqual([]);
  });

  // Last: its FORBIDDEN reply is itself a client error, which would raise error_rate here.
  it('only operators may subscribe to system.alerts', async () => {
    const trader = await connect(system.server.url, '/risk', system.token('dave'));
    sockets.push(trader);
    const reply = await request(trader, 'subscribe', { type: 'subscribe', topic: SYSTEM_ALERTS_TOPIC });
    expect(reply.type).toBe('error');
    expect((reply.payload as { code: string }).code).toBe('FORBIDDEN');
  });
});

describe('alerts need enough samples (ALERT_MIN_SAMPLES)', () => {
  /** Three accepted connections and one refused (25%) on a system with the default failure-rate threshold (5%). */
  async function oneRefusalInFour(env: Record<string, string>): Promise<TestSystem> {
    const system = await startTestSystem({ ALERT_EVAL_INTERVAL_MS: '50', ALERT_WINDOW_MS: '5000', ...env });
    systems.push(system);
    for (let i = 0; i < 3; i++) sockets.push(await connect(system.server.url, '/market', system.token(`ok-${i}`)));
    await expect(connect(system.server.url, '/market', 'not-a-jwt')).rejects.toMatchObject({ data: { code: 'AUTH_INVALID' } });
    // Several evaluations after the refusal, all inside the window.
    const ticks = Date.now() + 400;
    await waitFor(() => Date.now() > ticks, 2000, 'evaluations');
    return system;
  }

  it('one refused connection out of four leaves health ok under the default minimum', async () => {
    const body = await health((await oneRefusalInFour({})).server.url);
    expect(body).toMatchObject({ status: 'ok', reasons: [], alerts: [] });
  });

  it('the same four attempts alert when the minimum allows it (control)', async () => {
    const body = await health((await oneRefusalInFour({ ALERT_MIN_SAMPLES: '4' })).server.url);
    expect(body.status).toBe('degraded');
    // The `alerts` check's reason: its name, then the active alerts' messages.
    expect(body.reasons).toEqual(['alerts: connection failure rate 25% > 5% (1/4)']);
  });
});
