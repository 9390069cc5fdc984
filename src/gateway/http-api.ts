import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import type { Logger } from '../observability/logger.js';
import { ClientError } from '../protocol/errors.js';
import type { DeadLetterStore } from '../ingest/dead-letter.js';
import type { Publisher } from '../ingest/publisher.js';
import { hasRole, tokenFromRequest, type Principal } from './auth.js';
import { errorEnvelope } from './envelope.js';
import type { ClusterView } from '../transports/socketio/socketio-transport.js';
import type { Gateway } from './gateway.js';

const PUBLIC_DIR = new URL('../../public/', import.meta.url);
const MIME: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };
const MAX_BODY_BYTES = 1 << 20;
const MAX_EVENTS_PER_REQUEST = 1000;

export interface HttpApiDeps {
  gateway: Gateway;
  /** Where POST /api/v1/events goes (own projector or Kafka); absent: 503. */
  publisher?: Publisher;
  deadLetters: DeadLetterStore;
  log: Logger;
  /** Cross-gateway operations (disconnect a user everywhere, cluster-wide counts). */
  cluster?: () => ClusterView;
  /** Extra health fields (Redis/Kafka connectivity, …) contributed by the running roles. */
  health?: () => Promise<Record<string, unknown>>;
}

/**
 * The REST side of the gateway: health, topics, event publishing, dead letters and the dashboard.
 * Small and dependency-free on purpose: a handful of routes do not justify a web framework.
 */
export function createHttpHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    route(deps, req, res).catch((err: unknown) => {
      const clientError = err instanceof ClientError ? err : undefined;
      if (!clientError) deps.log.error({ err, url: req.url }, 'http handler failed');
      const status = clientError ? statusOf(clientError.code) : 500;
      sendJson(res, status, errorEnvelope(clientError?.code ?? 'INTERNAL_ERROR', clientError?.details));
    });
  };
}

async function route(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const key = `${req.method ?? 'GET'} ${url.pathname}`;
  switch (key) {
    case 'GET /api/v1/ws/health':
      return sendJson(res, 200, await health(deps));
    case 'GET /api/v1/ws/topics':
      return sendJson(res, 200, await topics(deps));
    case 'POST /api/v1/events':
      return publish(deps, req, res);
    case 'GET /api/v1/dead-letters': {
      requireRole(deps, req, ['operator', 'publisher']);
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 100) || 100, 1000);
      return sendJson(res, 200, { count: await deps.deadLetters.count(), dead_letters: await deps.deadLetters.list(limit) });
    }
    case 'POST /api/v1/admin/disconnect': {
      requireRole(deps, req, ['operator']);
      const user = url.searchParams.get('user');
      if (!user || !deps.cluster) throw new ClientError('INVALID_MESSAGE', { reason: 'user query parameter required' });
      return sendJson(res, 200, { user, disconnected: await deps.cluster().disconnectUser(user) });
    }
    default:
      if (req.method === 'GET') return serveStatic(url.pathname, res);
      return sendJson(res, 404, { error: 'Not found' });
  }
}

async function health(deps: HttpApiDeps): Promise<Record<string, unknown>> {
  const extra = deps.health ? await deps.health() : {};
  return {
    status: 'ok',
    time: new Date().toISOString(),
    uptime_s: Math.round(process.uptime()),
    connections: deps.gateway.connectionCounts(),
    ...(deps.cluster ? { cluster: await deps.cluster().connections() } : {}),
    live_topics: deps.gateway.hub.stats().length,
    dead_letters: await deps.deadLetters.count(),
    ...extra,
  };
}

async function topics(deps: HttpApiDeps): Promise<Record<string, unknown>> {
  const live = new Map(deps.gateway.hub.stats().map((s) => [s.topic, s.subscribers]));
  const all = await deps.gateway.store.topics();
  all.sort((a, b) => a.topic.localeCompare(b.topic));
  return {
    count: all.length,
    topics: all.map((t) => ({ topic: t.topic, head_seq: t.headSeq, epoch: t.epoch, last_update: t.updatedAt, subscribers: live.get(t.topic) ?? 0 })),
  };
}

async function publish(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  requireRole(deps, req, ['publisher']);
  if (!deps.publisher) return sendJson(res, 503, { error: 'This process can not publish: it has no projector and no KAFKA_BROKERS' });
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
  sendJson(res, rejected === results.length && results.length > 0 ? 422 : 200, { accepted: results.length - rejected, dead_lettered: rejected, results });
}

function requireRole(deps: HttpApiDeps, req: IncomingMessage, roles: string[]): Principal {
  const principal = deps.gateway.authenticate(tokenFromRequest(req.headers, req.url));
  if (!roles.some((role) => hasRole(principal, role))) throw new ClientError('FORBIDDEN', { reason: `role ${roles.join(' or ')} required` });
  return principal;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ClientError('PAYLOAD_TOO_LARGE', { limit: MAX_BODY_BYTES });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function serveStatic(pathname: string, res: ServerResponse): Promise<void> {
  const name = pathname === '/' ? 'index.html' : pathname.slice(1);
  if (!/^[\w.-]+$/.test(name) || !MIME[extname(name)]) return sendJson(res, 404, { error: 'Not found' });
  try {
    const body = await readFile(new URL(name, PUBLIC_DIR));
    res.writeHead(200, { 'content-type': MIME[extname(name)], 'cache-control': 'no-cache' }).end(body);
  } catch {
    sendJson(res, 404, { error: 'Not found' });
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function statusOf(code: string): number {
  switch (code) {
    case 'AUTH_REQUIRED':
    case 'AUTH_INVALID':
      return 401;
    case 'FORBIDDEN':
      return 403;
    case 'PAYLOAD_TOO_LARGE':
      return 413;
    case 'RATE_LIMIT_EXCEEDED':
      return 429;
    default:
      return 400;
  }
}
