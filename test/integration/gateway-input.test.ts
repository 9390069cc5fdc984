import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { withCheckDigit } from '../../src/domain/isin.js';
import { MAX_MESSAGE_DEPTH } from '../../src/protocol/parse.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { DEFLATE_PATH } from '../../src/transports/socketio/socketio-transport.js';
import { connect, openClient, RefusedError, request, type TestClient, type Transport, TRANSPORTS } from '../support/clients.js';
import { health, startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/** Gateway input and connection handling: whatever a client sends, it gets a documented answer. */

const ISIN = 'IN0020240019';

const REDIS_URL = serviceUrl('REDIS_URL', 'the gateway input tests (two gateways on one Redis)');
const PREFIX = `gwin${process.pid}`;

/** Two gateways on one Redis: what one client does must not depend on which gateway it reached. */
let system: TestSystem;
let other: TestSystem;
const clients: TestClient[] = [];
/** A valid ISIN no test has used yet: a topic whose feed does not exist yet on the gateway. */
let fresh = 0;
const freshIsin = () => withCheckDigit(`XS${String(++fresh).padStart(9, '0')}`);

beforeAll(async () => {
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
  other = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([system.close(), other.close()]);
  const redis = await connectRedis(REDIS_URL);
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
});

async function open(transport: Transport, user: string): Promise<TestClient> {
  const client = await openClient(transport, system.server.url, 'market', ISIN, system.token(user));
  clients.push(client);
  return client;
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('a subscribe superseded by an unsubscribe of the same fresh topic ends with an ack saying so, never an internal error', async () => {
    const client = await open(transport, 'fickle');
    for (let i = 0; i < 40; i++) {
      const topic = `prices.${freshIsin()}`;
      const [subscribed, unsubscribed] = await Promise.all([client.request('subscribe', { topic }), client.request('unsubscribe', { topic })]);
      expect(unsubscribed).toMatchObject({ type: 'ack', payload: { action: 'unsubscribe', topic } });
      expect(subscribed).toMatchObject({ type: 'ack', payload: { action: 'subscribe', topic } });
      // Whichever way the race went, the hub holds nothing for the topic afterwards.
      expect(system.server.gateway.hub.stats().map((s) => s.topic)).not.toContain(topic);
    }
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });

  it('refuses topics whose id can not exist with INVALID_TOPIC; a valid ISIN without data stays subscribable', async () => {
    const client = await open(transport, 'picky');
    for (const topic of ['prices.NOTANISIN', 'prices.IN0020230086', 'prices.NOPE']) {
      expect(await client.request('subscribe', { topic }), topic).toMatchObject({ type: 'error', code: 'INVALID_TOPIC', details: { topic } });
    }
    const topic = `prices.${freshIsin()}`;
    expect(await client.request('subscribe', { topic })).toMatchObject({ type: 'ack', payload: { snapshot_seq: 0 } });
    expect(client.received.find((e) => e.type === 'snapshot' && e.topic === topic)).toMatchObject({ seq: 0, payload: {} });
  });

  it('answers a message nested 10,000 levels deep with INVALID_MESSAGE and stays usable', async () => {
    // Serialised by hand: client libraries' own encoders recurse and would overflow first.
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const reply = await sendRawMessage(transport, 'deep', 'subscribe', `{"type":"subscribe","topic":"prices.${ISIN}","padding":${deep}}`);
    expect(reply).toMatchObject({ type: 'error', code: 'INVALID_MESSAGE', details: { reason: `nested deeper than ${MAX_MESSAGE_DEPTH} levels` } });
  });
});

const wsUrl = (gateway: TestSystem, path: string) => `${gateway.server.url.replace('http', 'ws')}${path}`;

/** A raw WebSocket: every frame it receives, and how it closed. */
function rawSocket(url: string): { ws: WebSocket; frames: Envelope[]; closed: Promise<number> } {
  const ws = new WebSocket(url);
  const frames: Envelope[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Envelope));
  return { ws, frames, closed: new Promise((resolve) => ws.once('close', (code) => resolve(code))) };
}

describe('plain WebSocket connections', () => {
  it('answers frames sent right after the handshake, while admission is still checking', async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { ws, frames } = rawSocket(wsUrl(system, `/api/v1/ws/market/${ISIN}?token=${system.token('eager')}`));
      ws.once('open', () => {
        for (let i = 0; i < 3; i++) ws.send(JSON.stringify({ type: 'ping', correlation_id: `p${i}` }));
      });
      await waitFor(() => frames.filter((f) => f.type === 'pong').length === 3, 3000, 'three pongs');
      expect(frames.filter((f) => f.type === 'pong').map((f) => f.correlation_id)).toEqual(['p0', 'p1', 'p2']);
      ws.close();
    }
  });

  it('a path subscribe superseded by an immediate unsubscribe ends with an ack saying so', async () => {
    for (let i = 0; i < 10; i++) {
      const topic = `prices.${freshIsin()}`;
      const { ws, frames } = rawSocket(wsUrl(system, `/api/v1/ws/market/${topic.slice('prices.'.length)}?token=${system.token('fickle')}`));
      ws.once('open', () => ws.send(JSON.stringify({ type: 'unsubscribe', topic })));
      await waitFor(() => frames.filter((f) => f.type === 'ack').length === 2, 3000, 'both acks');
      expect(frames.filter((f) => f.type === 'error')).toEqual([]);
      expect(frames.filter((f) => f.type === 'ack').map((f) => (f.payload as { action: string }).action).sort()).toEqual(['subscribe', 'unsubscribe']);
      ws.close();
    }
  });

  it.each(['/api/v1/ws/market/NOPE', '/api/v1/ws/market/IN0020230086', '/api/v1/ws/auction/a.b'])('refuses the path %s with INVALID_TOPIC (4404)', async (path) => {
    const { frames, closed } = rawSocket(wsUrl(system, `${path}?token=${system.token('picky')}`));
    // The first frame says it all (an accepted connection would start with its snapshot).
    await waitFor(() => frames.length > 0, 3000, 'first frame');
    expect(frames[0]).toMatchObject({ type: 'error', code: 'INVALID_TOPIC' });
    expect(await closed).toBe(4404);
  });

  it.each([
    ['with a token', 'INVALID_TOPIC', 4404, true],
    ['without a token', 'AUTH_REQUIRED', 4401, false],
  ])('malformed percent-encoding in the path id, %s: %s, close %i', async (_name, code, closeCode, withToken) => {
    const { frames, closed } = rawSocket(wsUrl(system, `/api/v1/ws/market/%E0%A4%A${withToken ? `?token=${system.token('typo')}` : ''}`));
    expect(await closed).toBe(closeCode);
    expect(frames).toMatchObject([{ type: 'error', code }]);
  });

  it('an upgrade on a path nobody serves is answered 404 and closed; both Socket.IO engines still upgrade', async () => {
    for (const path of ['/nothing', '/socket.io', '/api/v1/wsx', '/socket.io-deflatex/']) {
      const answer = await rawUpgrade(system, path);
      expect(answer.text, path).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
      expect(answer.text).toContain('"code":"NOT_FOUND"');
      expect(answer.closed, path).toBe(true);
    }
    for (const path of ['/socket.io', DEFLATE_PATH]) {
      const socket = await connect(system.server.url, '/market', system.token('engines'), { path });
      expect(await request(socket, 'ping', {})).toMatchObject({ type: 'pong' });
      socket.close();
    }
  });
});

describe('operator disconnect', () => {
  it('closes every connection of the user on every gateway, both transports, and nobody else', async () => {
    // The adapters of the two gateways must have met before a server-side emit reaches both.
    await waitFor(async () => (await health(system.server.url)).cluster?.gateways === 2, 10_000, 'both gateways in the cluster');
    const doomed = await Promise.all([system, other].flatMap((gateway) => TRANSPORTS.map((transport) => openClient(transport, gateway.server.url, 'market', ISIN, gateway.token('evicted')))));
    const compressed = await connect(other.server.url, '/market', other.token('evicted'), { path: DEFLATE_PATH });
    const bystanders = await Promise.all(TRANSPORTS.map((transport) => openClient(transport, other.server.url, 'market', ISIN, other.token('bystander'))));
    clients.push(...bystanders);
    const compressedClosed = new Promise((resolve) => compressed.once('disconnect', resolve));
    const closed = doomed.map((client) => client.closed());

    const res = await fetch(`${system.server.url}/api/v1/admin/disconnect?user=evicted`, { method: 'POST', headers: { authorization: `Bearer ${system.token('ops', 'operator')}` } });
    expect(await res.json()).toEqual({ user: 'evicted', disconnected: 5 });

    const codes = await Promise.all(closed);
    await compressedClosed;
    expect(codes.map((c) => c.code)).toEqual([
      'io server disconnect',
      4410,
      'io server disconnect',
      4410,
    ]);
    for (const client of doomed) expect(client.received.at(-1)).toMatchObject({ type: 'error', code: 'DISCONNECTED_BY_OPERATOR' });
    for (const client of bystanders) expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });
});

describe('connection-rate refusal', () => {
  it.each(TRANSPORTS)('over %s: RATE_LIMIT_EXCEEDED with its documented close code (4429), never 1011', async (transport) => {
    const limited = await startTestSystem({ WS_CONNECT_RATE_PER_IP: '1' });
    try {
      (await openClient(transport, limited.server.url, 'market', ISIN, limited.token('hasty'))).close();
      const refused = await openClient(transport, limited.server.url, 'market', ISIN, limited.token('hasty')).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(RefusedError);
      expect(refused).toMatchObject({ code: 'RATE_LIMIT_EXCEEDED', closeCode: transport === 'websocket' ? 4429 : undefined });
    } finally {
      await limited.close();
    }
  });
});

/** Sends a WebSocket upgrade request on `path` over raw TCP; resolves with what came back once the server closed (or after 3 s). */
function rawUpgrade(gateway: TestSystem, path: string): Promise<{ text: string; closed: boolean }> {
  const { port } = new URL(gateway.server.url);
  const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
  const chunks: Buffer[] = [];
  socket.on('data', (chunk) => chunks.push(chunk));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  return new Promise((resolve) => {
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString('utf8'), closed });
    };
    const timer = setTimeout(() => done(false), 3000);
    socket.once('close', () => done(true));
  });
}

/**
 * Sends one raw message as the transport carries it (a WebSocket text frame; a Socket.IO EVENT packet
 * `2/market,[kind, <message>]` written straight to the engine), resolves with the error it gets, and checks the
 * connection still answers a ping.
 */
async function sendRawMessage(transport: Transport, user: string, kind: string, text: string): Promise<Envelope> {
  if (transport === 'websocket') {
    const client = await open(transport, user);
    const reply = await client.sendRaw(text);
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
    return reply;
  }
  const socket = await connect(system.server.url, '/market', system.token(user));
  try {
    const error = new Promise<Envelope>((resolve) => socket.once('error', resolve));
    socket.io.engine.write(`2/market,[${JSON.stringify(kind)},${text}]`);
    const reply = await error;
    expect(await request(socket, 'ping', {})).toMatchObject({ type: 'pong' });
    return reply;
  } finally {
    socket.close();
  }
}
