import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { closeCodeOf, ERRORS, type ErrorCode } from '../../src/protocol/errors.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { connect, openClient, RefusedError, request, type TestClient, TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, TEST_SECRET, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

const ISIN = 'IN0020240019';
const TOPIC = `prices.${ISIN}`;

let system: TestSystem;
const clients: TestClient[] = [];

beforeAll(async () => {
  system = await startTestSystem({ WS_HEARTBEAT_INTERVAL: '1', WS_CONNECTION_TIMEOUT: '2' });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await system.close();
});

async function refusal(promise: Promise<TestClient>): Promise<string> {
  try {
    clients.push(await promise);
    return 'accepted';
  } catch (err) {
    if (err instanceof RefusedError) return err.code;
    throw err;
  }
}

async function publishQuotes(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await system.ingest.submit(quote(ISIN, 99 + i / 1000, 99.1 + i / 1000), 'test');
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  const open = async (stream: 'market' | 'trading' | 'risk' | 'mobile' | 'auction', id: string, token: string | undefined) => {
    const client = await openClient(transport, system.server.url, stream, id, token);
    clients.push(client);
    return client;
  };

  it('refuses bad credentials with the documented codes and never reaches data', async () => {
    expect(await refusal(openClient(transport, system.server.url, 'market', ISIN, undefined))).toBe('AUTH_REQUIRED');
    expect(await refusal(openClient(transport, system.server.url, 'market', ISIN, 'x.y.z'))).toBe('AUTH_INVALID');
    const expired = jwt.sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 5 }, TEST_SECRET);
    expect(await refusal(openClient(transport, system.server.url, 'market', ISIN, expired))).toBe('AUTH_INVALID');
  });

  it('snapshot, then contiguous deltas; resume sends exactly what was missed', async () => {
    await publishQuotes(3);
    const client = await open('market', ISIN, system.token('alice'));
    const snapshot = client.received.find((e) => e.type === 'snapshot' && e.topic === TOPIC) as Envelope;
    expect(snapshot.seq).toBeGreaterThanOrEqual(3);
    await publishQuotes(20);
    await waitFor(() => client.received.filter((e) => e.type === 'delta').length === 20, 5000, 'deltas');
    const seqs = client.received.filter((e) => e.type === 'delta').map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 20 }, (_, i) => (snapshot.seq as number) + 1 + i));

    await client.request('unsubscribe', { topic: TOPIC });
    const last = seqs.at(-1) as number;
    await publishQuotes(15);
    const before = client.received.length;
    const ack = await client.request('subscribe', { topic: TOPIC, resume_from_seq: last, epoch: snapshot.meta.epoch });
    expect(ack.type).toBe('ack');
    const resumed = client.received.slice(before).filter((e) => e.topic === TOPIC && e.type !== 'ack');
    expect(resumed.map((e) => `${e.type}:${e.seq}`)).toEqual(Array.from({ length: 15 }, (_, i) => `delta:${last + 1 + i}`));
  });

  it("gives FORBIDDEN for another user's topics and keeps the connection", async () => {
    expect(await refusal(openClient(transport, system.server.url, 'trading', 'bob', system.token('alice')))).toBe('FORBIDDEN');
    const client = await open('mobile', 'alice', system.token('alice'));
    expect(await client.request('subscribe', { topic: 'risk.bob.alerts' })).toMatchObject({ type: 'error', code: 'FORBIDDEN', error: expect.any(String) });
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });

  it('answers malformed, unknown and oversized messages with stable codes', async () => {
    const client = await open('market', ISIN, system.token('carol'));
    expect(await client.sendRaw('{not json')).toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(await client.request('subscribe', { topic: 'nope' })).toMatchObject({ code: 'INVALID_TOPIC' });
    expect(await client.request('subscribe', { topic: TOPIC, batch_size: 0 })).toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(await client.request('subscribe', { topic: TOPIC, filler: 'x'.repeat(70_000) })).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    const error = (await client.sendRaw('{not json')) as Envelope & Record<string, unknown>;
    expect(error).toMatchObject({ type: 'error', error: expect.any(String), code: 'INVALID_MESSAGE', details: expect.any(Object), timestamp: expect.any(String) });
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });

  it('sends heartbeats carrying the head seq of each subscribed topic', async () => {
    const client = await open('market', ISIN, system.token('dan'));
    await waitFor(() => client.received.some((e) => e.type === 'heartbeat'), 3000, 'heartbeat');
    const heartbeat = client.received.find((e) => e.type === 'heartbeat') as Envelope;
    const head = (await system.backends.store.topics()).find((t) => t.topic === TOPIC)?.headSeq;
    expect((heartbeat.payload as { heads: Record<string, number> }).heads[TOPIC]).toBe(head);
  });
});

/** A reply as a client sees it, less what differs by nature (its time, a generated correlation id). */
function shape(reply: Envelope): Record<string, unknown> {
  const { ts: _ts, timestamp: _timestamp, correlation_id: _id, ...rest } = reply as Envelope & { timestamp?: string };
  return rest;
}

describe('one answer on both transports', () => {
  const user = 'twin';
  const twins = () => Promise.all([openClient('socketio', system.server.url, 'mobile', user, system.token(user)), openClient('websocket', system.server.url, 'mobile', user, system.token(user))]);

  it.each<[string, ErrorCode, (client: TestClient) => Promise<Envelope>]>([
    ['malformed JSON', 'INVALID_MESSAGE', (c) => c.sendRaw('{not json')],
    ['an unknown message type', 'INVALID_MESSAGE', (c) => c.request('subscribe_all', { topic: TOPIC })],
    ['a schema failure', 'INVALID_MESSAGE', (c) => c.request('subscribe', { topic: TOPIC, batch_size: 0 })],
    ['a bad background_mode', 'INVALID_MESSAGE', (c) => c.request('background_mode', { enabled: 'yes' })],
    ['an unknown level', 'INVALID_MESSAGE', (c) => c.request('subscribe', { topic: TOPIC, subtopics: { levels: 'L3' } })],
    ['a topic that can not exist', 'INVALID_TOPIC', (c) => c.request('subscribe', { topic: 'prices.IN0020230086' })],
    ['a topic of another stream', 'INVALID_TOPIC', (c) => c.request('unsubscribe', { topic: 'system.alerts' })],
    ['a message over WS_MAX_MESSAGE_BYTES', 'PAYLOAD_TOO_LARGE', (c) => c.request('subscribe', { type: 'subscribe', topic: TOPIC, filler: 'x'.repeat(70_000) })],
    ['a refresh with a bad token', 'AUTH_INVALID', (c) => c.request('refresh', { token: 'x.y.z' })],
    ["another user's topic", 'FORBIDDEN', (c) => c.request('subscribe', { topic: 'trading.bob' })],
  ])('%s: %s, the same envelope (code, text, details)', async (_name, code, send) => {
    const [sio, ws] = await twins();
    clients.push(sio, ws);
    const [a, b] = [await send(sio), await send(ws)];
    expect(a).toMatchObject({ type: 'error', code, error: ERRORS[code].message });
    expect(shape(a)).toEqual(shape(b));
  });

  it('binary data: a WebSocket binary frame and a Socket.IO attachment get the same answer', async () => {
    const socket = await connect(system.server.url, '/market', system.token(user));
    const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}/api/v1/ws/market/${ISIN}?token=${system.token(user)}`);
    try {
      const fromSio = await request(socket, 'subscribe', { topic: Buffer.from(TOPIC) });
      const fromWs = new Promise<Envelope>((resolve) => ws.on('message', (data) => {
        const env = JSON.parse(data.toString()) as Envelope;
        if (env.type === 'error') resolve(env);
      }));
      await new Promise((resolve) => ws.once('open', resolve));
      ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
      expect(fromSio).toMatchObject({ code: 'INVALID_MESSAGE', details: { reason: 'binary data is not supported; send JSON' } });
      expect(shape(fromSio)).toEqual(shape(await fromWs));
    } finally {
      socket.close();
      ws.close();
    }
  });

  it.each<[string, ErrorCode, () => string | undefined]>([
    ['no token', 'AUTH_REQUIRED', () => undefined],
    ['a bad signature', 'AUTH_INVALID', () => jwt.sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, 'another-secret')],
    ['no exp', 'AUTH_INVALID', () => jwt.sign({ sub: 'alice' }, TEST_SECRET)],
  ])('a refusal for %s: %s with the same text and details; WebSocket closes with its close code', async (_name, code, token) => {
    const t = token();
    const sio = await connect(system.server.url, '/market', t).then(
      () => expect.fail('accepted'),
      (err: Error & { data?: { code?: string; details?: unknown } }) => ({ code: err.data?.code, error: err.message, details: err.data?.details }),
    );
    const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}/api/v1/ws/market/${ISIN}${t ? `?token=${t}` : ''}`);
    const frame = new Promise<Envelope & { code: string; error: string; details: unknown }>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
    const closeCode = await new Promise<number>((resolve) => ws.once('close', resolve));
    const { code: wsCode, error, details } = await frame;
    expect(sio).toEqual({ code, error: ERRORS[code].message, details });
    expect(wsCode).toBe(code);
    expect(error).toBe(ERRORS[code].message);
    expect(closeCode).toBe(closeCodeOf(code));
  });
});

describe('plain WebSocket specifics', () => {
  it('closes refused connections with a code that says why', async () => {
    for (const [path, token, code] of [
      [`/api/v1/ws/market/${ISIN}`, undefined, 4401],
      ['/api/v1/ws/risk/bob', system.token('alice'), 4403],
      ['/api/v1/ws/nowhere/x', system.token('alice'), 4404],
    ] as const) {
      const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}${path}${token ? `?token=${token}` : ''}`);
      const closeCode = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
      expect(closeCode).toBe(code);
    }
  });

  it('accepts the token in an Authorization header and reads mobile headers', async () => {
    const client = await openClient('websocket', system.server.url, 'mobile', 'erin', undefined, {
      authorization: `Bearer ${system.token('erin')}`,
      'x-device-type': 'mobile',
      'x-client-version': '1.0.0',
      'x-background-mode': 'true',
    });
    clients.push(client);
    expect(client.received.filter((e) => e.type === 'snapshot').map((e) => e.topic).sort()).toEqual(['portfolio.erin', 'risk.erin.alerts', 'trading.erin']);
  });

  it('closes a connection that stays silent past WS_CONNECTION_TIMEOUT', async () => {
    // autoPong off: this client answers nothing, like a dead peer.
    const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}/api/v1/ws/market/${ISIN}?token=${system.token('zed')}`, { autoPong: false });
    const started = Date.now();
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    expect(code === 4000 || code === 1006).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
  });
});

describe('connection limit', () => {
  it('refuses connections beyond WS_MAX_CONNECTIONS with TOO_MANY_CONNECTIONS on both transports', async () => {
    const small = await startTestSystem({ WS_MAX_CONNECTIONS: '2' });
    try {
      const a = await openClient('websocket', small.server.url, 'market', ISIN, small.token('a'));
      const b = await openClient('socketio', small.server.url, 'market', ISIN, small.token('b'));
      for (const transport of TRANSPORTS) {
        await expect(openClient(transport, small.server.url, 'market', ISIN, small.token('c'))).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      }
      a.close();
      b.close();
    } finally {
      await small.close();
    }
  });
});

describe('rate limits', () => {
  it.each(TRANSPORTS)('over %s: a burst beyond the limit gets RATE_LIMIT_EXCEEDED, the connection keeps working', async (transport) => {
    const limited = await startTestSystem({ RATE_LIMITS_JSON: JSON.stringify({ market: { burst: 5, per_minute: 120 } }) });
    try {
      const client = await openClient(transport, limited.server.url, 'market', ISIN, limited.token('greedy'));
      // The Socket.IO client spent one token on its subscribe; the WebSocket path subscribed for free.
      const left = transport === 'socketio' ? 4 : 5;
      const replies = [];
      for (let i = 0; i < left + 2; i++) replies.push(await client.request('ping', {}));
      expect(replies.map((r) => r.type)).toEqual([...Array<string>(left).fill('pong'), 'error', 'error']);
      expect(replies[left]).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', error: 'Rate limit exceeded', details: { topic: '/market', limit: '120 per minute' } });
      const refused = await client.request('subscribe', { topic: TOPIC });
      expect(refused).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', details: { topic: TOPIC } });
      await new Promise((r) => setTimeout(r, 600)); // 2 tokens per second refill
      expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
      client.close();
    } finally {
      await limited.close();
    }
  });
});

describe('admission limits', () => {
  it.each(TRANSPORTS)('over %s: per-user open connections and per-IP attempt rates are refused clearly', async (transport) => {
    const limited = await startTestSystem({ WS_MAX_CONNECTIONS_PER_USER: '2', WS_CONNECT_RATE_PER_IP: '6' });
    try {
      const token = limited.token('heavy');
      const first = await openClient(transport, limited.server.url, 'market', ISIN, token);
      const second = await openClient(transport, limited.server.url, 'market', ISIN, token);
      await expect(openClient(transport, limited.server.url, 'market', ISIN, token)).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      first.close();
      await first.closed();
      await waitFor(async () => (await refusal(openClient(transport, limited.server.url, 'market', ISIN, token))) === 'accepted', 2000, 'slot freed');
      // 4 attempts so far from this address, then the IP's rate (6 per minute) runs out.
      const codes = [];
      for (let i = 0; i < 3; i++) codes.push(await refusal(openClient(transport, limited.server.url, 'market', ISIN, limited.token(`other-${i}`))));
      expect(codes).toContain('RATE_LIMIT_EXCEEDED');
      second.close();
    } finally {
      await limited.close();
    }
  });
});

describe('every WebSocket endpoint', () => {
  it.each([
    ['market', ISIN, ['prices.IN0020240019']],
    ['auction', 'RBI-2026-11-26-01', ['auctions.RBI-2026-11-26-01']],
    ['trading', 'frank', ['portfolio.frank', 'trading.frank']],
    ['risk', 'frank', ['risk.frank', 'risk.frank.alerts']],
    ['mobile', 'frank', ['portfolio.frank', 'risk.frank.alerts', 'trading.frank']],
  ] as const)('/api/v1/ws/%s/{id} subscribes to its default topics', async (stream, id, topics) => {
    const client = await openClient('websocket', system.server.url, stream, id, system.token('frank'));
    clients.push(client);
    expect(client.received.filter((e) => e.type === 'snapshot').map((e) => e.topic).sort()).toEqual([...topics]);
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });
});

describe('graceful shutdown', () => {
  it('tells clients on both transports to reconnect elsewhere (SERVER_SHUTTING_DOWN), then closes', async () => {
    const doomed = await startTestSystem();
    const ws = await openClient('websocket', doomed.server.url, 'market', ISIN, doomed.token('a'));
    const sio = await openClient('socketio', doomed.server.url, 'market', ISIN, doomed.token('b'));
    const wsClosed = ws.closed();
    const sioClosed = sio.closed();
    await doomed.close();
    expect((await wsClosed).code).toBe(1012);
    await sioClosed;
    for (const client of [ws, sio]) {
      expect(client.received.at(-1)).toMatchObject({ type: 'error', code: 'SERVER_SHUTTING_DOWN', details: { reconnect: true } });
    }
    expect(shape(sio.received.at(-1) as Envelope)).toEqual(shape(ws.received.at(-1) as Envelope));
  });
});
