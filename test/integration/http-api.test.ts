import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../../src/domain/json.js';
import { redisKeys } from '../../src/store/redis/keys.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * The HTTP API against a real server: no request takes the process down, query parameters are
 * validated, unknown paths and wrong methods get 404 / 405 in the error envelope, liveness and
 * readiness answer for machines.
 */

const ISIN = 'IN0020230085';
const REDIS_URL = serviceUrl('REDIS_URL', 'the HTTP API tests');
const PREFIX = `http-api-${randomBytes(4).toString('hex')}`;

interface ErrorBody {
  type: string;
  code: string;
  error: string;
  details: { reason?: string; allow?: string };
}

/** `[[[…]]]`, `depth` arrays deep, as JSON text (built as text: a value this deep can not be stringified). */
const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

let memory: TestSystem;
let redisSystem: TestSystem;
let redis: Redis;

beforeAll(async () => {
  memory = await startTestSystem();
  redis = await connectRedis(REDIS_URL);
  redisSystem = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
});

afterAll(async () => {
  await memory?.close();
  await redisSystem?.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

function call(system: TestSystem, path: string, init: RequestInit & { role?: string } = {}): Promise<Response> {
  const { role, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (role) headers.set('authorization', `Bearer ${system.token('http-test', role)}`);
  return fetch(`${system.server.url}${path}`, { ...rest, headers });
}

async function errorOf(res: Response): Promise<ErrorBody> {
  expect(res.headers.get('content-type')).toBe('application/json');
  const body = (await res.json()) as ErrorBody;
  expect(body.type).toBe('error');
  expect(typeof body.error).toBe('string');
  return body;
}

describe('deeply nested JSON (defect 1)', () => {
  it.each([
    ['memory', () => memory],
    ['redis', () => redisSystem],
  ])('is dead-lettered with the reason, and listing dead letters afterwards keeps the process up (%s)', async (_name, system) => {
    const s = system();
    const posted = await call(s, '/api/v1/events', { method: 'POST', role: 'publisher', body: nestedArrays(10_000) });
    expect(posted.status).toBe(422);
    expect(await posted.json()).toMatchObject({ dead_lettered: 1, results: [{ status: 'dead_lettered', reason: `nesting deeper than ${MAX_JSON_DEPTH} levels` }] });

    const listed = await call(s, '/api/v1/dead-letters?limit=5', { role: 'operator' });
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as { dead_letters: { reason: string }[] };
    expect(body.dead_letters[0]?.reason).toBe(`nesting deeper than ${MAX_JSON_DEPTH} levels`);
    expect((await call(s, '/livez')).status).toBe(200);
  });

  it('a nested event below the bound is validated as usual', async () => {
    const posted = await call(memory, '/api/v1/events', { method: 'POST', role: 'publisher', body: nestedArrays(MAX_JSON_DEPTH) });
    expect(await posted.json()).toMatchObject({ results: [{ status: 'dead_lettered', reason: expect.not.stringContaining('nesting') }] });
  });

  it('an entry stored before the bound existed (10,000 levels, straight in Redis) still lists', async () => {
    const entry = `{"at":"2026-01-01T00:00:00.000Z","reason":"old","source":"http","event":${nestedArrays(10_000)}}`;
    await redis.lpush(redisKeys(PREFIX).deadLetters, entry);
    const listed = await call(redisSystem, '/api/v1/dead-letters?limit=1', { role: 'operator' });
    expect(listed.status).toBe(200);
    const [letter] = ((await listed.json()) as { dead_letters: { reason: string; event: unknown }[] }).dead_letters;
    expect(letter?.reason).toBe('old');
    expect(JSON.stringify(letter?.event)).toContain('nested too deeply');
  });

  it('an unreadable stored entry is listed as text', async () => {
    await redis.lpush(redisKeys(PREFIX).deadLetters, '{not json');
    const listed = await call(redisSystem, '/api/v1/dead-letters?limit=1', { role: 'operator' });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { dead_letters: unknown[] }).dead_letters).toEqual([{ at: '', reason: 'unreadable dead-letter entry', source: '', event: '{not json' }]);
  });
});

describe('query parameters (defect 12)', () => {
  beforeAll(async () => {
    const bad = [1, 2, 3].map((n) => ({ event_id: `bad-q-${n}`, type: 'quote' }));
    expect((await call(memory, '/api/v1/events', { method: 'POST', role: 'publisher', body: JSON.stringify(bad) })).status).toBe(422);
  });

  it.each([
    ['limit=-1', 'limit must be an integer 1..1000'],
    ['limit=0', 'limit must be an integer 1..1000'],
    ['limit=0.5', 'limit must be an integer 1..1000'],
    ['limit=1001', 'limit must be an integer 1..1000'],
    ['limit=1e3', 'limit must be an integer 1..1000'],
    ['limit=', 'limit must be an integer 1..1000'],
    ['limit=abc', 'limit must be an integer 1..1000'],
    ['limit=1&limit=2', "query parameter 'limit' given more than once"],
    ['lmit=5', "unknown query parameter 'lmit' (this route reads limit)"],
  ])('GET /api/v1/dead-letters?%s -> 400 %s', async (query, reason) => {
    const res = await call(memory, `/api/v1/dead-letters?${query}`, { role: 'operator' });
    expect(res.status).toBe(400);
    expect(await errorOf(res)).toMatchObject({ code: 'INVALID_MESSAGE', details: { reason } });
  });

  it('limit is honoured inside 1..1000, default 100', async () => {
    const one = (await (await call(memory, '/api/v1/dead-letters?limit=1', { role: 'operator' })).json()) as { count: number; dead_letters: unknown[] };
    expect(one.dead_letters).toHaveLength(1);
    expect(one.count).toBeGreaterThanOrEqual(3);
    const all = (await (await call(memory, '/api/v1/dead-letters', { role: 'operator' })).json()) as { count: number; dead_letters: unknown[] };
    expect(all.dead_letters).toHaveLength(Math.min(all.count, 100));
  });

  it('routes without parameters refuse any (token excepted), disconnect needs a valid user', async () => {
    expect(await errorOf(await call(memory, '/api/v1/ws/topics?x=1'))).toMatchObject({ code: 'INVALID_MESSAGE', details: { reason: "unknown query parameter 'x'" } });
    expect((await call(memory, `/api/v1/ws/topics?token=${memory.token('t')}`)).status).toBe(200);
    for (const query of ['', '?user=', `?user=${'u'.repeat(129)}`]) {
      const res = await call(memory, `/api/v1/admin/disconnect${query}`, { method: 'POST', role: 'operator' });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).details.reason).toBe('user must be a user id of 1..128 characters');
    }
    expect(await (await call(memory, '/api/v1/admin/disconnect?user=nobody', { method: 'POST', role: 'operator' })).json()).toEqual({ user: 'nobody', disconnected: 0 });
  });
});

describe('routes and methods (defect 12)', () => {
  it.each([
    ['DELETE', '/api/v1/events', 'POST'],
    ['GET', '/api/v1/events', 'POST'],
    ['POST', '/api/v1/ws/health', 'GET, HEAD'],
    ['PUT', '/api/v1/dead-letters', 'GET, HEAD'],
    ['GET', '/api/v1/admin/disconnect', 'POST'],
    ['POST', '/livez', 'GET, HEAD'],
  ])('%s %s -> 405, Allow: %s', async (method, path, allow) => {
    const res = await call(memory, path, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe(allow);
    expect(await errorOf(res)).toMatchObject({ code: 'METHOD_NOT_ALLOWED', details: { allow } });
  });

  it.each([
    ['GET', '/nothing'],
    ['GET', '/api/v1/nothing'],
    ['POST', '/nothing'],
    ['GET', '/..%2fpackage.json'],
    ['GET', '/constructor'],
  ])('%s %s -> 404 in the error envelope', async (method, path) => {
    const res = await call(memory, path, { method });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe('NOT_FOUND');
  });

  it.each([
    ['CONNECT', 'CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'METHOD_NOT_ALLOWED'],
    ['not HTTP', 'HELLO\r\n\r\n', 400, 'INVALID_MESSAGE'],
    ['unknown method', 'BREW /livez HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'INVALID_MESSAGE'],
  ])('%s gets the error envelope, then the connection closes', async (_name, bytes, status, code) => {
    const { port } = new URL(memory.server.url);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = tcpConnect(Number(port), '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString()));
      socket.on('close', () => resolve(received));
      socket.on('error', reject);
      socket.write(bytes);
    });
    const [head, body] = text.split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    expect(head).toContain('content-type: application/json');
    expect(JSON.parse(body as string)).toMatchObject({ type: 'error', code });
  });

  it('HEAD is answered like GET, without a body', async () => {
    const res = await call(memory, '/livez', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('a body over 1 MiB gets 413 in the envelope, and the server keeps serving', async () => {
    const res = await call(memory, '/api/v1/events', { method: 'POST', role: 'publisher', body: 'x'.repeat((1 << 20) + 1) });
    expect(res.status).toBe(413);
    expect((await errorOf(res)).code).toBe('PAYLOAD_TOO_LARGE');
    expect((await call(memory, '/api/v1/events', { method: 'POST', role: 'publisher', body: JSON.stringify(quote(ISIN)) })).status).toBe(200);
  });
});

describe('liveness, readiness, health (defect 9)', () => {
  it('livez and readyz answer 200 with JSON while serving', async () => {
    const live = await call(memory, '/livez');
    expect(live.status).toBe(200);
    expect(await live.json()).toMatchObject({ status: 'alive' });
    const ready = await call(memory, '/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', reasons: [] });
  });

  it('draining: readyz 503 with the reason, livez still 200', async () => {
    const system = await startTestSystem();
    try {
      system.server.drain();
      const ready = await call(system, '/readyz');
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'not_ready', reasons: ['draining: shutting down'] });
      expect((await call(system, '/livez')).status).toBe(200);
      const body = (await (await call(system, '/api/v1/ws/health')).json()) as { status: string; checks: { name: string }[] };
      expect(body.checks.find((c) => c.name === 'draining')).toEqual({ name: 'draining', status: 'unready', detail: 'shutting down' });
      // Draining turns readiness off, not health: the process still serves the clients it has.
      expect(body.status).toBe('ok');
    } finally {
      await system.close();
    }
  });
});
