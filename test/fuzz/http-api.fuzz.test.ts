import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { connect as tcpConnect } from 'node:net';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, describe, expect, it } from 'vitest';
import { ERROR_CODES, httpStatusOf, isErrorCode, type ErrorCode } from '../../src/protocol/errors.js';
import { connect, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';
import { SeqChecker } from '../support/seq-checker.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * Property-based fuzzing of the HTTP API on a real server: random and mutated methods, paths, query
 * strings, headers and bodies (and raw bytes that are not HTTP at all). Every reply must be a
 * documented status; every refusal the documented error envelope with a documented code and the
 * status that code maps to; the server must stay up, and a Socket.IO subscriber fed throughout must
 * see every seq exactly once. `/socket.io*` and upgrade headers belong to the transports' own fuzzing.
 */

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const REDIS_URL = serviceUrl('REDIS_URL', 'the HTTP API fuzz test');
const PREFIX = `http-fuzz-${randomBytes(4).toString('hex')}`;

/** 200 answers, 422 (every event dead-lettered) and what httpStatusOf gives a documented code. */
const DOCUMENTED = new Set([200, 422, ...ERROR_CODES.map(httpStatusOf), 408, 431]);
const KNOWN_PATHS = [
  '/livez',
  '/readyz',
  '/api/v1/ws/health',
  '/api/v1/ws/topics',
  '/api/v1/events',
  '/api/v1/dead-letters',
  '/api/v1/admin/disconnect',
  '/api/v1/replay',
  '/api/v1/replay/state',
  '/api/v1/audit/checkpoints',
  '/api/v1/audit/deliveries',
  '/api/v1/audit/shown',
  '/',
  '/index.html',
];

interface Reply {
  status: number;
  contentType: string | undefined;
  body: string;
}

function send(url: string, method: string, path: string, headers: Record<string, string>, body: string | undefined): Promise<Reply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ hostname, port, method, path, headers: { connection: 'close', ...headers }, timeout: 5000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no reply to ${method} ${path} within 5 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Raw bytes on a fresh TCP connection: the first status line and body the server answers with. */
function sendRaw(url: string, bytes: string): Promise<Reply> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(Number(port), hostname);
    let text = '';
    socket.setTimeout(5000, () => socket.destroy(new Error('no reply to raw bytes within 5 s')));
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1] ?? 0);
      const contentType = /\r\ncontent-type: ([^\r]+)/i.exec(head)?.[1];
      resolve({ status, contentType, body: rest.join('\r\n\r\n') });
    });
    socket.end(bytes);
  });
}

/** The documented status, and for a refusal the documented envelope whose code maps to that status. */
function checkReply(reply: Reply, what: string, method: string): void {
  expect(DOCUMENTED.has(reply.status), `${what}: status ${reply.status} ${reply.body.slice(0, 200)}`).toBe(true);
  if (method === 'HEAD') return; // no body by definition
  // The dashboard's static files; replay and audit streams (NDJSON, CSV), whose lines their own tests parse.
  if (reply.status === 200 && (reply.contentType?.startsWith('text/') || reply.contentType?.startsWith('application/x-ndjson'))) return;
  expect(reply.contentType, what).toBe('application/json');
  const body = JSON.parse(reply.body) as { type?: string; code?: string; error?: string };
  if (reply.status === 200 || reply.status === 422) return;
  expect(body.type, `${what}: ${reply.body.slice(0, 200)}`).toBe('error');
  expect(isErrorCode(body.code ?? ''), `${what}: code ${body.code}`).toBe(true);
  expect(typeof body.error).toBe('string');
  if (reply.status < 408 || reply.status > 431) expect(reply.status, `${what}: ${body.code}`).toBe(httpStatusOf(body.code as ErrorCode));
}

// --- arbitraries -----------------------------------------------------------------------------------

const pathChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@/%'.split(''));
const pathText = fc.string({ unit: pathChar, maxLength: 40 });
const mutatedPath = fc.oneof(
  fc.constantFrom(...KNOWN_PATHS),
  fc.tuple(fc.constantFrom(...KNOWN_PATHS), pathText).map(([p, extra]) => `${p}${extra}`),
  fc.tuple(fc.constantFrom(...KNOWN_PATHS), fc.constantFrom('%', '%E0%A4%A', '%zz', '%00', '/..', '//', '/./', '%2e%2e%2f', '\\'.replace('\\', '%5C'))).map(([p, bad]) => `${p}${bad}`),
  pathText.map((p) => `/${p}`),
).filter((p) => !p.startsWith('/socket.io'));

const queryValue = fc.oneof(
  fc.integer({ min: -5, max: 2000 }).map(String),
  fc.constantFrom('', '0.5', '1e3', '-0', '00001', '9'.repeat(30), 'NaN', 'Infinity', '%', '%zz', '%E0%A4%A', 'a b', '💥'),
  fc.constantFrom(TOPIC, 'prices.NOPE', 'system.alerts', 'ndjson', 'csv', 'xml', 'redis', 'kafka', 'auto', '2026-01-01T00:00:00Z', '2026-13-01T00:00:00Z', '2999-01-01T00:00:00.000Z', 'fuzz'),
  fc.string({ maxLength: 20 }),
);
const queryString = fc.oneof(
  fc.constant(''),
  fc.array(fc.tuple(fc.constantFrom('limit', 'user', 'token', 'x', 'LIMIT', 'limit[]', '', 'topic', 'from_seq', 'to_seq', 'since', 'until', 'at', 'format', 'source', 'epoch'), queryValue), { maxLength: 4 }).map((pairs) => `?${pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&')}`),
  fc.constantFrom('?', '?&&', '?=', '?limit', '?limit=1&limit=2', '?limit=%', '?%zz=1', '?limit=%E0%A4%A'),
);

const method = fc.oneof(fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE'), fc.stringMatching(/^[A-Z]{1,8}$/));

const event = fc.oneof(
  fc.constant(quote(ISIN)),
  fc.record({ event_id: fc.string({ maxLength: 10 }), type: fc.constantFrom('quote', 'book', 'trade', 'position', 'nope'), ts: fc.constantFrom('2026-01-01T00:00:00Z', 'yesterday'), isin: fc.constantFrom(ISIN, 'IN0020230086', 'NOPE') }),
  fc.jsonValue({ maxDepth: 4 }),
);
const bodies = fc.oneof(
  fc.constant(undefined),
  event.map((e) => JSON.stringify(e)),
  fc.array(event, { maxLength: 5 }).map((e) => JSON.stringify(e)),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc.integer({ min: 1, max: 3000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
  fc.string({ maxLength: 200 }),
  event.map((e) => JSON.stringify(e).slice(0, -1)),
  fc.constant(JSON.stringify(Array.from({ length: 1001 }, () => ({})))),
);

function headers(system: TestSystem) {
  const auth = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom('publisher', 'operator', 'auditor', undefined).map((role) => `Bearer ${system.token('fuzz', role)}`),
    fc.constantFrom('Bearer', 'Bearer ', 'Bearer not.a.jwt', 'Basic Zm9vOmJhcg==', '', `Bearer ${system.token('fuzz', 'operator', -10)}`),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019.-_ '.split('')), maxLength: 30 }).map((t) => `Bearer ${t}`),
  );
  return fc
    .record({
      authorization: auth,
      'content-type': fc.constantFrom(undefined, 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1'),
      'x-device-type': fc.constantFrom(undefined, 'ios', 'android', '"><script>'),
      accept: fc.constantFrom(undefined, '*/*', 'text/html', 'application/xml'),
    })
    .map((h) => Object.fromEntries(Object.entries(h).filter((e): e is [string, string] => e[1] !== undefined)));
}

// --- the property ----------------------------------------------------------------------------------

const systems: TestSystem[] = [];
const sockets: Socket[] = [];
let redis: Redis | undefined;

afterAll(async () => {
  for (const s of sockets) s.close();
  for (const s of systems) await s.close();
  if (redis) {
    await deleteKeys(redis, `${PREFIX}:*`);
    await redis.quit();
  }
});

/** Fuzzes `system` for `runs` requests while a canary subscriber follows a topic fed every 5 ms. */
async function fuzz(system: TestSystem, runs: number): Promise<void> {
  const canary = await connect(system.server.url, '/market', system.token('canary'));
  sockets.push(canary);
  const checker = new SeqChecker();
  checker.attach(canary);
  expect((await request(canary, 'subscribe', { topic: TOPIC })).type).toBe('ack');
  await waitFor(() => checker.last.has(TOPIC), 5000, 'canary snapshot');
  const snapshotSeq = checker.last.get(TOPIC) as number;

  let published = 0;
  let feeding = true;
  const feed = (async () => {
    while (feeding) {
      const outcome = await system.ingest.submit(quote(ISIN, 99 + (published % 10) / 100, 99.5), 'fuzz-canary');
      if (outcome.status === 'applied') published++;
      await sleep(5);
    }
  })();

  const url = system.server.url;
  try {
    await fc.assert(
      fc.asyncProperty(method, mutatedPath, queryString, headers(system), bodies, async (m, path, query, h, body) => {
        const reply = await send(url, m, `${path}${query}`, h, body);
        checkReply(reply, `${m} ${path}${query}`, m);
      }),
      { numRuns: runs },
    );
    // Bytes that are not HTTP, or barely: every one answered with the envelope, never a dropped connection.
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: fc.constantFrom(...'GETPOST /?=&%HTTP1.\u0000\u00ff:xyz'.split('')), minLength: 1, maxLength: 60 }), async (garbage) => {
        const reply = await sendRaw(url, `${garbage}\r\n\r\n`);
        checkReply(reply, `raw ${JSON.stringify(garbage)}`, '');
      }),
      { numRuns: Math.ceil(runs / 4) },
    );
  } finally {
    feeding = false;
    await feed;
  }

  expect((await send(url, 'GET', '/livez', {}, undefined)).status).toBe(200);
  await waitFor(() => checker.last.get(TOPIC) === snapshotSeq + published, 5000, 'canary to catch up');
  expect(checker.violations).toEqual([]);
  expect(checker.received).toBe(published);
  expect(published).toBeGreaterThan(10);
}

describe('HTTP API fuzz', () => {
  it('memory store: every reply documented, server up, canary contiguous', async () => {
    const system = await startTestSystem({ LOG_LEVEL: 'silent' });
    systems.push(system);
    await fuzz(system, 1000);
  }, 30_000);

  it('Redis store: the same, fewer runs', async () => {
    redis = await connectRedis(REDIS_URL);
    const system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
    systems.push(system);
    await fuzz(system, 300);
  }, 30_000);
});
