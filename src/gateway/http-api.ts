import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import type { Duplex } from 'node:stream';
import { parseTopic } from '../domain/topics.js';
import type { ActiveAlert } from '../observability/alerts.js';
import type { Health } from '../observability/health.js';
import type { Logger } from '../observability/logger.js';
import { ClientError, httpStatusOf, type ErrorCode } from '../protocol/errors.js';
import type { DeadLetterStore } from '../ingest/dead-letter.js';
import type { Publisher } from '../ingest/publisher.js';
import { historyFor, type KafkaHistoryOptions } from '../replay/kafka-history.js';
import { planReplay, replayEncoder, runReplay, writableSink, type ReplayPlan } from '../replay/replay.js';
import { parseReplayRequest, parseStateRequest, REPLAY_PARAMS, STATE_PARAMS } from '../replay/request.js';
import { stateAt } from '../replay/state.js';
import { queryDeliveries, type DeliveryLog } from '../store/deliveries.js';
import { hasRole, tokenFromRequest, type Principal, type Role } from './auth.js';
import { DELIVERIES_PARAMS, MAX_USER_ID_LENGTH, parseDeliveriesRequest, parseShownRequest, SHOWN_PARAMS, shownAt } from './delivery-audit.js';
import { errorEnvelope, replayLine, snapshotEnvelope } from './envelope.js';
import type { Gateway } from './gateway.js';

const PUBLIC_DIR = new URL('../../public/', import.meta.url);
const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
/** Caps of the HTTP API (README "HTTP API"). */
export const MAX_BODY_BYTES = 1 << 20;
export const MAX_EVENTS_PER_REQUEST = 1000;
export const DEAD_LETTERS_LIMIT = { min: 1, max: 1000, default: 100 } as const;
/** Who may read a topic's history through the replay routes. */
const REPLAY_ROLES: Role[] = ['auditor', 'operator'];

/** What the running roles report about this process: its checks assessed (observability/health.ts), and the active alerts. */
export interface HealthReport extends Health {
  alerts: ActiveAlert[];
}

/**
 * Operations across every gateway of the deployment. Declared here, where it is used; the Socket.IO
 * transport implements it over its adapter (transports depend on the gateway, not back).
 */
export interface ClusterView {
  /** Closes every connection of a user, both transports, on every gateway; resolves with how many there were. */
  disconnectUser(userId: string): Promise<number>;
  /** Connections (both transports) summed over the gateway nodes that answered. */
  connections(): Promise<{ gateways: number; total: number }>;
}

export interface HttpApiDeps {
  gateway: Gateway;
  /** Where POST /api/v1/events goes (own projector or Kafka); absent: 503. */
  publisher?: Publisher;
  deadLetters: DeadLetterStore;
  log: Logger;
  /** Cross-gateway operations (disconnect a user everywhere, cluster-wide counts). */
  cluster: () => ClusterView;
  /** Read on every health and readiness request (draining turns /readyz 503 so balancers stop sending clients). */
  health: () => Promise<HealthReport>;
  /** Where replays rebuild what the store no longer holds (absent: no Kafka, replays serve the store's part). */
  replayKafka?: KafkaHistoryOptions;
  /** The gateways' delivery record (runtime/deliveries.ts). */
  deliveries: DeliveryLog;
}

/**
 * One response, serialised before anything is written; or streamed (replay): headers first, then `body`
 * writes as fast as the client reads and resolves with the HTTP trailers.
 */
type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; bytes: Buffer; contentType: string }
  | { status: number; contentType: string; headers: Record<string, string>; body: (res: ServerResponse) => Promise<Record<string, string>> };

interface Route {
  /** Query parameters the route reads; any other (besides `token`, the documented auth fallback) is refused. */
  query?: readonly string[];
  handle(deps: HttpApiDeps, req: IncomingMessage, query: URLSearchParams): Promise<Reply>;
}

type Method = 'GET' | 'POST';

const json = (status: number, body: unknown): Reply => ({ status, json: body });

/** Every API route by path, then method: a known path with another method is 405, an unknown one 404. */
const ROUTES: Record<string, Partial<Record<Method, Route>>> = {
  // Liveness: the process answers at all. Nothing it depends on is checked, so a restart can not help it.
  '/livez': { GET: { handle: async () => json(200, { status: 'alive', uptime_s: Math.round(process.uptime()) }) } },
  '/readyz': { GET: { handle: (deps) => readiness(deps) } },
  '/api/v1/ws/health': { GET: { handle: (deps) => health(deps) } },
  '/api/v1/ws/topics': { GET: { handle: (deps) => topics(deps) } },
  '/api/v1/events': { POST: { handle: (deps, req) => publish(deps, req) } },
  '/api/v1/dead-letters': {
    GET: {
      query: ['limit'],
      async handle(deps, req, query) {
        requireRole(deps, req, ['operator', 'publisher']);
        const limit = intParam(query, 'limit', DEAD_LETTERS_LIMIT);
        return json(200, { count: await deps.deadLetters.count(), dead_letters: await deps.deadLetters.list(limit) });
      },
    },
  },
  '/api/v1/replay': { GET: { query: REPLAY_PARAMS, handle: (deps, req, query) => replay(deps, req, query) } },
  '/api/v1/replay/state': { GET: { query: STATE_PARAMS, handle: (deps, req, query) => replayState(deps, req, query) } },
  // The signed hash-chain checkpoints the store holds (deployments without Kafka; with it they are in the audit topic).
  '/api/v1/audit/checkpoints': {
    GET: {
      query: ['topic'],
      async handle(deps, req, query) {
        requireRole(deps, req, REPLAY_ROLES);
        const topic = query.get('topic');
        if (!topic || !parseTopic(topic)) throw badQuery('topic must be a topic that can exist');
        return json(200, { topic, checkpoints: await deps.gateway.store.auditCheckpoints(topic) });
      },
    },
  },
  '/api/v1/audit/deliveries': { GET: { query: DELIVERIES_PARAMS, handle: (deps, req, query) => deliveries(deps, req, query) } },
  '/api/v1/audit/shown': { GET: { query: SHOWN_PARAMS, handle: (deps, req, query) => shown(deps, req, query) } },
  '/api/v1/admin/disconnect': {
    POST: {
      query: ['user'],
      async handle(deps, req, query) {
        requireRole(deps, req, ['operator']);
        const user = query.get('user');
        if (!user || user.length > MAX_USER_ID_LENGTH) throw badQuery(`user must be a user id of 1..${MAX_USER_ID_LENGTH} characters`);
        return json(200, { user, disconnected: await deps.cluster().disconnectUser(user) });
      },
    },
  },
};

/**
 * The REST side of the gateway: health, topics, event publishing, dead letters and the dashboard.
 * Small and dependency-free on purpose: a handful of routes do not justify a web framework.
 * No request can take the process down: every failure becomes an error envelope for that request only.
 */
export function createHttpHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(deps, req).then(
      (reply) => write(deps.log, req, res, reply),
      (err: unknown) => write(deps.log, req, res, failure(deps.log, req, err)),
    );
  };
}

async function route(deps: HttpApiDeps, req: IncomingMessage): Promise<Reply> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // HEAD is GET without the body (Node's response drops it): load balancers probe with either.
  const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
  const routes = Object.hasOwn(ROUTES, url.pathname) ? ROUTES[url.pathname] : undefined;
  if (!routes) {
    if (method === 'GET') return serveStatic(url.pathname);
    throw new ClientError('NOT_FOUND', { path: url.pathname });
  }
  const chosen = routes[method as Method];
  if (!chosen) {
    const allow = allowed(routes);
    return { status: 405, json: errorEnvelope('METHOD_NOT_ALLOWED', { method, allow }), headers: { allow } };
  }
  checkQuery(url.searchParams, chosen.query ?? []);
  return chosen.handle(deps, req, url.searchParams);
}

function allowed(routes: Partial<Record<Method, Route>>): string {
  return Object.keys(routes)
    .flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m]))
    .join(', ');
}

// --- query parameters ------------------------------------------------------------------------------

function badQuery(reason: string): ClientError {
  return new ClientError('INVALID_MESSAGE', { reason });
}

/** Unknown or repeated parameters are refused: a typo must not silently fall back to a default. */
function checkQuery(query: URLSearchParams, known: readonly string[]): void {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (name !== 'token' && !known.includes(name)) throw badQuery(`unknown query parameter '${name}'${known.length > 0 ? ` (this route reads ${known.join(', ')})` : ''}`);
    if (seen.has(name)) throw badQuery(`query parameter '${name}' given more than once`);
    seen.add(name);
  }
}

function intParam(query: URLSearchParams, name: string, range: { min: number; max: number; default: number }): number {
  const raw = query.get(name);
  if (raw === null) return range.default;
  const value = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= range.min && value <= range.max)) throw badQuery(`${name} must be an integer ${range.min}..${range.max}`);
  return value;
}

// --- routes ----------------------------------------------------------------------------------------

async function health(deps: HttpApiDeps): Promise<Reply> {
  const report = await deps.health();
  const body = {
    status: report.status,
    reasons: report.reasons,
    checks: report.checks,
    alerts: report.alerts,
    time: new Date().toISOString(),
    uptime_s: Math.round(process.uptime()),
    connections: deps.gateway.connectionCounts(),
    // Read from the backends the report may just have found down: their failure is part of the answer, not a 500.
    cluster: await orError(deps.cluster().connections()),
    live_topics: deps.gateway.hub.stats().length,
    dead_letters: await orError(deps.deadLetters.count()),
  };
  // A machine reads the status code: `down` must not look healthy to a balancer or a healthcheck.
  return json(report.status === 'down' ? 503 : 200, body);
}

async function orError<T>(value: Promise<T>): Promise<T | { error: string }> {
  try {
    return await value;
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Ready to take clients: not draining, and nothing this process depends on (store, Kafka) is down. */
async function readiness(deps: HttpApiDeps): Promise<Reply> {
  const { ready, readyReasons } = await deps.health();
  return json(ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', reasons: readyReasons });
}

async function topics(deps: HttpApiDeps): Promise<Reply> {
  const live = new Map(deps.gateway.hub.stats().map((s) => [s.topic, s.subscribers]));
  const all = await deps.gateway.store.topics();
  all.sort((a, b) => a.topic.localeCompare(b.topic));
  return json(200, {
    count: all.length,
    topics: all.map((t) => ({ topic: t.topic, head_seq: t.headSeq, epoch: t.epoch, last_update: t.updatedAt, subscribers: live.get(t.topic) ?? 0 })),
  });
}

async function publish(deps: HttpApiDeps, req: IncomingMessage): Promise<Reply> {
  requireRole(deps, req, ['publisher']);
  if (!deps.publisher) throw new ClientError('SERVICE_UNAVAILABLE', { reason: 'this process can not publish: it has no projector and no KAFKA_BROKERS' });
  const body = await readBody(req);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new ClientError('INVALID_MESSAGE', { reason: `body is not JSON: ${(err as Error).message}` });
  }
  const events = Array.isArray(parsed) ? parsed : [parsed];
  if (events.length > MAX_EVENTS_PER_REQUEST) throw new ClientError('PAYLOAD_TOO_LARGE', { limit: MAX_EVENTS_PER_REQUEST, unit: 'events' });
  const results = await deps.publisher.publish(events, 'http');
  const rejected = results.filter((r) => r.status === 'dead_lettered').length;
  return json(rejected === results.length && results.length > 0 ? 422 : 200, { accepted: results.length - rejected, dead_lettered: rejected, results });
}

/** Query parameters by name, absent ones undefined (checkQuery already refused repeated ones). */
function params<N extends string>(query: URLSearchParams, names: readonly N[]): Record<N, string | undefined> {
  return Object.fromEntries(names.map((name) => [name, query.get(name) ?? undefined])) as Record<N, string | undefined>;
}

/**
 * A topic's history by seq or time, streamed from the store page by page (never the whole range in
 * memory). The plan (what is held of the asked range) goes in the `x-replay-plan` header; what was
 * served, including anything trimmed while streaming, in the `x-replay-end` trailer and, for NDJSON,
 * the last line.
 */
async function replay(deps: HttpApiDeps, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  requireRole(deps, req, REPLAY_ROLES);
  const request = parseReplayRequest(params(query, REPLAY_PARAMS));
  const history = historyFor(deps.gateway.store, deps.replayKafka, request.source, request.epoch);
  let plan: ReplayPlan;
  try {
    plan = await planReplay(history, request);
  } catch (err) {
    await history.close();
    throw err;
  }
  const encoder = replayEncoder(request.format, request.topic, replayLine);
  const { topic, epoch, fromSeq, toSeq, firstSeq, headSeq, missing } = plan;
  return {
    status: 200,
    contentType: encoder.contentType,
    headers: {
      'cache-control': 'no-store',
      'x-replay-plan': JSON.stringify({ topic, epoch: epoch || null, from_seq: fromSeq, to_seq: toSeq, first_seq: firstSeq, head_seq: headSeq, missing }),
      trailer: 'x-replay-end',
    },
    body: async (res) => {
      try {
        return { 'x-replay-end': JSON.stringify(await runReplay(history, plan, encoder, writableSink(res))) };
      } finally {
        await history.close();
      }
    },
  };
}

/** The topic's state as of `at` (src/replay/state.ts): the current snapshot, or rebuilt from Kafka. */
async function replayState(deps: HttpApiDeps, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  requireRole(deps, req, REPLAY_ROLES);
  const { topic, at } = parseStateRequest(params(query, STATE_PARAMS));
  const snapshot = await stateAt(deps.gateway.store, deps.replayKafka, topic, at);
  return json(200, snapshotEnvelope(snapshot, snapshot.state, {}, null));
}

/** A user's delivery ranges, one NDJSON line each (each range once, as last written), ordered by opening. */
async function deliveries(deps: HttpApiDeps, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  requireRole(deps, req, REPLAY_ROLES);
  const records = await queryDeliveries(deps.deliveries, parseDeliveriesRequest(params(query, DELIVERIES_PARAMS)));
  return {
    status: 200,
    contentType: 'application/x-ndjson',
    headers: { 'cache-control': 'no-store' },
    body: async (res) => {
      const sink = writableSink(res);
      for (const record of records) await sink.write(`${JSON.stringify(record)}\n`);
      return {};
    },
  };
}

/** What a user had of a topic at an instant: the last seq delivered by then and the state at it. */
async function shown(deps: HttpApiDeps, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  requireRole(deps, req, REPLAY_ROLES);
  const request = parseShownRequest(params(query, SHOWN_PARAMS));
  const reader = historyFor(deps.gateway.store, deps.replayKafka, 'auto');
  try {
    return json(200, await shownAt(deps.deliveries, { reader, store: deps.gateway.store }, request));
  } finally {
    await reader.close();
  }
}

function requireRole(deps: HttpApiDeps, req: IncomingMessage, roles: Role[]): Principal {
  const principal = deps.gateway.authenticate(tokenFromRequest(req.headers, req.url));
  if (!roles.some((role) => hasRole(principal, role))) throw new ClientError('FORBIDDEN', { reason: `role ${roles.join(' or ')} required` });
  return principal;
}

/**
 * The body, up to MAX_BODY_BYTES. Listeners rather than `for await`: leaving that loop destroys the
 * request, and with it the socket the 413 must still be written to.
 */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) return void chunks.push(chunk);
      req.off('data', onData);
      req.resume(); // discard the rest; the reply closes the connection
      reject(new ClientError('PAYLOAD_TOO_LARGE', { limit: MAX_BODY_BYTES, unit: 'bytes' }));
    };
    req.on('data', onData);
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}

async function serveStatic(pathname: string): Promise<Reply> {
  const name = pathname === '/' ? 'index.html' : pathname.slice(1);
  const type = /^[\w.-]+$/.test(name) ? MIME[extname(name)] : undefined;
  if (!type) throw new ClientError('NOT_FOUND', { path: pathname });
  try {
    return { status: 200, bytes: await readFile(new URL(name, PUBLIC_DIR)), contentType: type };
  } catch {
    throw new ClientError('NOT_FOUND', { path: pathname });
  }
}

// --- responses -------------------------------------------------------------------------------------

function failure(log: Logger, req: IncomingMessage, err: unknown): Reply {
  if (err instanceof ClientError) return json(httpStatusOf(err.code), errorEnvelope(err.code, err.details, null, err.message));
  log.error({ err, method: req.method, url: req.url }, 'http handler failed');
  return json(500, errorEnvelope('INTERNAL_ERROR'));
}

/** Serialises first, then writes headers and body once: a body that can not be serialised becomes a 500, never half a response. */
function write(log: Logger, req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  if ('body' in reply) {
    stream(log, req, res, reply);
    return;
  }
  let status = reply.status;
  let headers: Record<string, string>;
  let body: Buffer | string;
  if ('bytes' in reply) {
    headers = { 'content-type': reply.contentType, 'cache-control': 'no-cache' };
    body = reply.bytes;
  } else {
    headers = { 'content-type': 'application/json', ...reply.headers };
    try {
      body = JSON.stringify(reply.json);
    } catch (err) {
      log.error({ err, method: req.method, url: req.url }, 'http response not serialisable');
      status = 500;
      body = JSON.stringify(errorEnvelope('INTERNAL_ERROR'));
    }
  }
  // A request whose body was cut short (413) must not leave unread bytes on a kept-alive connection.
  if (!req.complete) headers.connection = 'close';
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, headers).end(body);
}

/**
 * Headers now, then the body as the client reads it. A failure after the headers can not change the
 * status: the connection is destroyed, so the client sees a truncated response (no trailer) rather than
 * an answer that looks whole.
 */
function stream(log: Logger, req: IncomingMessage, res: ServerResponse, reply: Extract<Reply, { body: unknown }>): void {
  res.writeHead(reply.status, { 'content-type': reply.contentType, ...reply.headers });
  // HEAD: the headers say it all; reading the range would only be discarded.
  if (req.method === 'HEAD') return void res.end();
  reply.body(res).then(
    (trailers) => {
      res.addTrailers(trailers);
      res.end();
    },
    (err: unknown) => {
      if (!res.destroyed) log.error({ err, method: req.method, url: req.url }, 'http stream failed');
      res.destroy();
    },
  );
}

/**
 * Requests that never reach the router: unparseable HTTP (llhttp's `clientError`) and CONNECT (which
 * Node hands over as a raw socket). Both get the error envelope like every other refusal, then the
 * connection closes: left to Node, the first is a bare 400 and the second a dropped connection.
 */
export function answerUnroutable(kind: 'malformed' | 'connect', err: (Error & { code?: string }) | undefined, socket: Duplex): void {
  // Bytes after a request that asked to close: that request's reply (maybe still pending) ends the connection.
  if (err?.code === 'HPE_CLOSED_CONNECTION') return;
  if (!socket.writable || err?.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const [status, reason, code]: [number, string, ErrorCode] =
    kind === 'connect'
      ? [405, 'Method Not Allowed', 'METHOD_NOT_ALLOWED']
      : err?.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'PAYLOAD_TOO_LARGE']
        : err?.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'Request Timeout', 'INVALID_MESSAGE']
          : [400, 'Bad Request', 'INVALID_MESSAGE'];
  const details = kind === 'connect' ? { method: 'CONNECT' } : { reason: `malformed HTTP request (${err?.code ?? 'parse error'})` };
  const body = JSON.stringify(errorEnvelope(code, details));
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
