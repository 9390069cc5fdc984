import jwt from 'jsonwebtoken';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io as ioClient } from 'socket.io-client';
import type { Envelope } from '../../src/protocol/messages.js';
import type { ClientToServerEvents, DeltaEnvelope, ServerToClientEvents, SnapshotEnvelope } from '../../src/protocol/socketio-events.js';
import { DEFLATE_PATH, pendingPackets } from '../../src/transports/socketio/socketio-transport.js';
import { connect, Recorder, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, TEST_SECRET } from '../support/system.js';
import { waitFor } from '../support/waits.js';

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;

let system: Awaited<ReturnType<typeof startTestSystem>>;
const sockets: Socket[] = [];

async function open(namespace: string, token: string | undefined): Promise<Socket> {
  const socket = await connect(system.server.url, namespace, token);
  sockets.push(socket);
  return socket;
}

async function publish(events: unknown, token = system.token('upstream', 'publisher')): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${system.server.url}/api/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(events),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  system = await startTestSystem();
});

afterAll(async () => {
  for (const s of sockets) s.close();
  await system.close();
});

describe('authentication', () => {
  const codeOf = async (namespace: string, token: string | undefined) => {
    try {
      const s = await open(namespace, token);
      s.close();
      return 'connected';
    } catch (err) {
      return ((err as Error & { data?: { code?: string } }).data?.code) ?? 'no code';
    }
  };

  it.each([
    ['no token', () => undefined, 'AUTH_REQUIRED'],
    ['garbage token', () => 'not-a-jwt', 'AUTH_INVALID'],
    ['wrong signature', () => jwt.sign({ sub: 'alice' }, 'another-secret', { expiresIn: 60 }), 'AUTH_INVALID'],
    ['expired', () => jwt.sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 10 }, TEST_SECRET), 'AUTH_INVALID'],
    ['no exp', () => jwt.sign({ sub: 'alice' }, TEST_SECRET), 'AUTH_INVALID'],
    ['wrong algorithm (HS512)', () => jwt.sign({ sub: 'alice' }, TEST_SECRET, { algorithm: 'HS512', expiresIn: 60 }), 'AUTH_INVALID'],
    ['unsigned (alg none)', () => jwt.sign({ sub: 'alice' }, '', { algorithm: 'none', expiresIn: 60 }), 'AUTH_INVALID'],
    ['valid', () => system.token('alice'), 'connected'],
  ])('%s -> %s', async (_name, token, expected) => {
    expect(await codeOf('/market', token())).toBe(expected);
  });

  it('accepts the token from the query string and the Authorization header too', async () => {
    const { io } = await import('socket.io-client');
    const token = system.token('alice');
    for (const opts of [{ query: { token } }, { extraHeaders: { authorization: `Bearer ${token}` } }]) {
      const s = io(`${system.server.url}/market`, { transports: ['websocket'], forceNew: true, reconnection: false, ...opts });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => resolve());
        s.once('connect_error', reject);
      });
      expect(s.connected).toBe(true);
      expect(await request(s, 'ping', {})).toMatchObject({ type: 'pong' });
      s.close();
    }
  });
});

describe('engine.io internals flow control relies on', () => {
  it('a server-side socket still exposes its write buffer (the outbound queue)', async () => {
    const socket = await open('/market', system.token('probe'));
    const server = system.server.io.of('/market').sockets.get(socket.id as string);
    if (!server) throw new Error('no server-side socket');
    expect(Array.isArray((server.conn as unknown as { writeBuffer?: unknown }).writeBuffer)).toBe(true);
    expect(pendingPackets(server)).toBe(0);
  });
});

describe('compression on Socket.IO', () => {
  const negotiated = (nsp: import('socket.io').Namespace, id: string) => {
    const conn = nsp.sockets.get(id)?.conn as unknown as { transport: { socket?: { _extensions?: Record<string, unknown> } } };
    return conn.transport.socket?._extensions?.['permessage-deflate'] !== undefined;
  };

  it('is per connection: clients of the deflate path get permessage-deflate, others do not', async () => {
    const { io } = await import('socket.io-client');
    const zipped = io(`${system.server.url}/mobile`, { path: DEFLATE_PATH, transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: system.token('zed') } });
    sockets.push(zipped);
    await new Promise<void>((resolve, reject) => {
      zipped.once('connect', () => resolve());
      zipped.once('connect_error', reject);
    });
    const rec = new Recorder(zipped);
    await publish([quote(ISIN, 95, 95.1)]);
    expect(await request(zipped, 'subscribe', { topic: TOPIC })).toMatchObject({ type: 'ack' });
    expect(rec.of(TOPIC, 'snapshot')[0]?.payload).toMatchObject({ l1: { bid: 95 } });
    await publish([quote(ISIN, 94, 94.1)]);
    await waitFor(() => rec.of(TOPIC, 'delta').length === 1, 5000, 'compressed delta');

    const plain = await open('/mobile', system.token('zed'));
    expect(negotiated(system.server.ioDeflate.of('/mobile'), zipped.id as string)).toBe(true);
    expect(negotiated(system.server.io.of('/mobile'), plain.id as string)).toBe(false);
  });
});

describe('subscribe', () => {
  it('sends the snapshot, then contiguous deltas in seq order', async () => {
    await publish([quote(ISIN, 99.1, 99.2), quote(ISIN, 99.2, 99.3)]);
    const socket = await open('/market', system.token('alice'));
    const rec = new Recorder(socket);
    const ack = await request(socket, 'subscribe', { topic: TOPIC });
    expect(ack.type).toBe('ack');
    const snapshot = rec.of(TOPIC, 'snapshot')[0] as Envelope;
    expect(snapshot.seq).toBeGreaterThanOrEqual(2);
    expect((snapshot.payload as { l1: { bid: number } }).l1.bid).toBe(99.2);

    const more = Array.from({ length: 50 }, (_, i) => quote(ISIN, 98 + i / 100, 98.1 + i / 100));
    await publish(more);
    await waitFor(() => rec.of(TOPIC, 'delta').length === 50, 5000, '50 deltas');
    const seqs = rec.of(TOPIC, 'delta').map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => (snapshot.seq as number) + 1 + i));
    const last = rec.of(TOPIC, 'delta').at(-1) as Envelope;
    expect(last.payload).toMatchObject({ kind: 'l1', bid: 98.49 });
    expect(last.correlation_id).toBe(more.at(-1)?.event_id);
  });

  it('batch_size groups deltas into batch frames, keeping seq order within and across batches', async () => {
    const socket = await open('/market', system.token('erin'));
    const rec = new Recorder(socket);
    await request(socket, 'subscribe', { topic: TOPIC, batch_size: 10 });
    const start = (rec.of(TOPIC, 'snapshot')[0] as Envelope).seq as number;
    await publish(Array.from({ length: 35 }, () => quote(ISIN)));
    await waitFor(() => rec.of(TOPIC, 'delta').length === 35, 5000, '35 deltas');
    expect(rec.of(TOPIC, 'delta').map((e) => e.seq)).toEqual(Array.from({ length: 35 }, (_, i) => start + 1 + i));
    expect(rec.batches).toBeGreaterThanOrEqual(3);
    expect(rec.batches).toBeLessThan(35);
  });

  it('filters prices subtopics: an L1-only subscriber gets no trades', async () => {
    const socket = await open('/market', system.token('alice'));
    const rec = new Recorder(socket);
    await request(socket, 'subscribe', { topic: TOPIC, subtopics: { levels: 'L1', trades: false } });
    const snapshot = rec.of(TOPIC, 'snapshot')[0] as Envelope;
    expect(Object.keys(snapshot.payload as object)).not.toContain('trades');
    await publish([
      { event_id: `t-${Date.now()}`, type: 'trade', ts: new Date().toISOString(), isin: ISIN, trade_id: `T${Date.now()}`, price: 99.4, size: 1_000_000 },
      quote(ISIN, 97, 97.1),
    ]);
    await waitFor(() => rec.of(TOPIC, 'delta').length >= 1, 5000, 'L1 delta');
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.of(TOPIC, 'delta').map((e) => (e.payload as { kind: string }).kind)).toEqual(['l1']);
  });

  it('resume_from_seq sends exactly the missed entries; lost history gives a resync snapshot', async () => {
    const socket = await open('/market', system.token('bob'));
    const rec = new Recorder(socket);
    await request(socket, 'subscribe', { topic: TOPIC });
    const head = (rec.of(TOPIC, 'snapshot')[0] as Envelope).seq as number;
    await request(socket, 'unsubscribe', { topic: TOPIC });
    await publish(Array.from({ length: 20 }, () => quote(ISIN)));
    const rec2 = new Recorder(socket);
    const ack = await request(socket, 'subscribe', { topic: TOPIC, resume_from_seq: head });
    expect(ack.payload).toMatchObject({ resync: false });
    expect(rec2.of(TOPIC, 'snapshot')).toHaveLength(0);
    expect(rec2.of(TOPIC, 'delta').map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => head + 1 + i));

    const rec3 = new Recorder(socket);
    await request(socket, 'subscribe', { topic: TOPIC, resume_from_seq: head, epoch: 'not-the-epoch' });
    const resync = rec3.of(TOPIC, 'snapshot')[0] as Envelope;
    expect(resync.meta).toMatchObject({ resync: true });
    expect(resync.seq).toBe(head + 20);
  });
});

describe('the typed client contract (protocol/socketio-events.ts)', () => {
  it('a client typed by the event maps subscribes, gets its typed snapshot, ack and deltas', async () => {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = ioClient(`${system.server.url}/market`, { transports: ['websocket'], forceNew: true, reconnection: false, auth: { token: system.token('typed') } });
    sockets.push(socket);
    const snapshots: SnapshotEnvelope[] = [];
    const deltas: DeltaEnvelope[] = [];
    socket.on('snapshot', (env) => snapshots.push(env));
    socket.on('delta', (env) => deltas.push(env));
    const ack = await socket.timeout(5000).emitWithAck('subscribe', { topic: TOPIC, subtopics: { levels: 'L1', trades: false } });
    if (ack.type !== 'ack') throw new Error(`subscribe refused: ${ack.code}`);
    expect(ack.payload).toMatchObject({ action: 'subscribe', topic: TOPIC, epoch: snapshots[0]?.meta.epoch });
    await system.ingest.submit(quote(ISIN, 99.2, 99.3), 'test');
    await waitFor(() => deltas.length > 0, 5000, 'a typed delta');
    expect(deltas[0]).toMatchObject({ topic: TOPIC, seq: (snapshots[0]?.seq ?? 0) + 1, payload: { kind: 'l1' } });
    expect(typeof deltas[0]?.meta.event_ts).toBe('string');
  });
});

describe('a topic with no history yet', () => {
  it('can be subscribed before its first event and resumed with the empty epoch of that snapshot', async () => {
    const isin = 'IN0020250018';
    const topic = `prices.${isin}`;
    const socket = await open('/market', system.token('early'));
    const rec = new Recorder(socket);
    await request(socket, 'subscribe', { topic });
    const snapshot = rec.of(topic, 'snapshot')[0] as Envelope;
    expect(snapshot).toMatchObject({ seq: 0, payload: {} });
    await publish([quote(isin), quote(isin)]);
    await waitFor(() => rec.of(topic, 'delta').length === 2, 5000, 'first deltas');
    await request(socket, 'unsubscribe', { topic });
    await publish([quote(isin), quote(isin), quote(isin)]);
    const rec2 = new Recorder(socket);
    const ack = await request(socket, 'subscribe', { topic, resume_from_seq: 2, epoch: snapshot.meta.epoch });
    expect(ack).toMatchObject({ type: 'ack', payload: { resync: false } });
    expect(rec2.of(topic).filter((e) => e.type !== 'ack').map((e) => `${e.type}:${e.seq}`)).toEqual(['delta:3', 'delta:4', 'delta:5']);
  });
});

describe('authorisation and bad input', () => {
  it("refuses another user's topics with FORBIDDEN and keeps the connection", async () => {
    const socket = await open('/trading', system.token('alice'));
    for (const topic of ['trading.bob', 'portfolio.bob']) {
      const reply = await request(socket, 'subscribe', { topic });
      expect(reply).toMatchObject({ type: 'error', code: 'FORBIDDEN', payload: { code: 'FORBIDDEN' } });
    }
    const risk = await open('/risk', system.token('alice'));
    expect(await request(risk, 'subscribe', { topic: 'risk.bob.alerts' })).toMatchObject({ code: 'FORBIDDEN' });
    expect(await request(socket, 'subscribe', { topic: 'trading.alice' })).toMatchObject({ type: 'ack' });
  });

  it.each([
    ['unknown kind', 'fly', { topic: TOPIC }, 'INVALID_MESSAGE'],
    ['no topic', 'subscribe', {}, 'INVALID_MESSAGE'],
    ['not JSON', 'subscribe', '{oops', 'INVALID_MESSAGE'],
    ['bad batch_size', 'subscribe', { topic: TOPIC, batch_size: -1 }, 'INVALID_MESSAGE'],
    ['bad topic', 'subscribe', { topic: 'prices..x' }, 'INVALID_TOPIC'],
    ['wrong stream', 'subscribe', { topic: 'auctions.A1' }, 'INVALID_TOPIC'],
    ['oversized', 'subscribe', { topic: TOPIC, padding: 'x'.repeat(70_000) }, 'PAYLOAD_TOO_LARGE'],
  ])('%s -> %s, connection stays usable', async (_name, kind, message, code) => {
    const socket = await open('/market', system.token('carol'));
    const rec = new Recorder(socket);
    const reply = await request(socket, kind, message);
    expect(reply).toMatchObject({ type: 'error', code });
    expect(typeof (reply as Envelope & { error: string }).error).toBe('string');
    // The error is also emitted as an `error` event, for clients that do not use acks.
    await waitFor(() => rec.all.some((e) => e.type === 'error' && e.correlation_id === reply.correlation_id), 2000, 'error event');
    expect(socket.connected).toBe(true);
    expect(await request(socket, 'ping', {})).toMatchObject({ type: 'pong' });
  });

  it('dead-letters invalid events with the reason, visible through the endpoint', async () => {
    const bad = { event_id: 'bad-1', type: 'quote', ts: new Date().toISOString(), isin: 'IN0020230084', bid: 1, ask: 2, bid_size: 1, ask_size: 1 };
    const res = await publish([bad, { event_id: 'bad-2', type: 'no-such-type', ts: new Date().toISOString() }]);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ accepted: 0, dead_lettered: 2 });
    const list = await fetch(`${system.server.url}/api/v1/dead-letters`, { headers: { authorization: `Bearer ${system.token('ops', 'operator')}` } });
    const body = (await list.json()) as { count: number; dead_letters: { reason: string; event: { event_id: string } }[] };
    expect(body.count).toBeGreaterThanOrEqual(2);
    const letter = body.dead_letters.find((d) => d.event.event_id === 'bad-1');
    expect(letter?.reason).toMatch(/check digit/i);
  });

  it('publishing needs a publisher token', async () => {
    expect((await publish(quote(ISIN), system.token('alice'))).status).toBe(403);
    const res = await fetch(`${system.server.url}/api/v1/events`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 'AUTH_REQUIRED' });
  });

  it('applies a duplicate event_id once', async () => {
    const q = quote(ISIN, 96, 96.1);
    const first = await publish(q);
    const second = await publish(q);
    expect(first.body).toMatchObject({ accepted: 1 });
    expect((second.body.results as { status: string }[])[0]?.status).toBe('duplicate');
  });
});

describe('risk breach', () => {
  it('yields one delta on risk.{user} and one alert on risk.{user}.alerts', async () => {
    const socket = await open('/risk', system.token('dave'));
    const rec = new Recorder(socket);
    await request(socket, 'subscribe', { topic: 'risk.dave' });
    await request(socket, 'subscribe', { topic: 'risk.dave.alerts' });
    await publish({ event_id: `b-${Date.now()}`, type: 'risk.breach', ts: new Date().toISOString(), user_id: 'dave', limit: 'dv01', value: 120, threshold: 100, severity: 'critical' });
    await waitFor(() => rec.of('risk.dave', 'delta').length === 1 && rec.of('risk.dave.alerts', 'alert').length === 1, 5000, 'breach delta + alert');
    expect(rec.of('risk.dave.alerts', 'alert')[0]?.payload).toMatchObject({ severity: 'critical', limit: 'dv01' });
  });
});
