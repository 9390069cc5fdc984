import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { isErrorCode } from '../../src/protocol/errors.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { connect, openClient, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';
import { SeqChecker } from '../support/seq-checker.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * Property-based fuzzing of the client protocol on a real gateway (Redis store, so feeds start
 * asynchronously as in production), over both transports: valid messages with fields mutated, wrong
 * types, huge and deep values, random text and binary frames on WebSocket, random event names and
 * payload shapes on Socket.IO. Every message must get exactly one reply, an envelope whose error code
 * (if any) is documented and never INTERNAL_ERROR; the connection and the server stay up, and a canary
 * subscriber on each transport follows a topic fed throughout without a gap or a duplicate.
 */

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const REDIS_URL = serviceUrl('REDIS_URL', 'the client protocol fuzz test');
const PREFIX = `proto-fuzz-${randomBytes(4).toString('hex')}`;
const USER = 'fuzz';
/** Enough for every fuzz message: the rate limit is not what is under test (it answers a documented code anyway). */
const RATE_LIMITS = JSON.stringify({ market: { burst: 100_000, per_minute: 100_000 } });
const REPLY_TYPES = new Set(['ack', 'pong', 'error']);
/** Names socket.io-client refuses to emit (they are the protocol's own). */
const RESERVED_EVENTS = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

let system: TestSystem;
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX, RATE_LIMITS_JSON: RATE_LIMITS, WS_HEARTBEAT_INTERVAL: '1' });
});
afterAll(async () => {
  await system.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

// --- arbitraries -----------------------------------------------------------------------------------

/** `[[[…]]]` as text, `depth` levels: client encoders recurse, so deep values travel as text or raw packets. */
const deepText = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

function nestedValue(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

const topic = fc.oneof(
  fc.constantFrom(TOPIC, 'prices.IN0020240019', 'prices.IN0020230086', 'prices.NOPE', 'prices.', 'prices.IN0020230085.alerts', 'auctions.A1', `trading.${USER}`, 'trading.bob', 'risk.bob.alerts', 'system.alerts', '', '.', 'constructor'),
  fc.stringMatching(/^[A-Z]{2}[A-Z0-9]{9}[0-9]$/).map((isin) => `prices.${isin}`),
  fc.string({ maxLength: 40 }),
);

const wildValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, -1, 0, 1.5, 1e308, -0, '', true, [], {}, '__proto__', 'L1,L3'),
  fc.string({ maxLength: 100 }),
  fc.integer({ min: 1, max: 400 }).map(nestedValue),
  fc.integer({ min: 60_000, max: 90_000 }).map((n) => 'x'.repeat(n)),
);

function validMessage(system: TestSystem) {
  const token = fc.oneof(fc.constant(system.token(USER)), fc.constant(system.token('someone-else')), fc.constant(system.token(USER, undefined, -60)), fc.string({ maxLength: 30 }));
  const correlation = { correlation_id: fc.string({ minLength: 1, maxLength: 20 }) };
  return fc.oneof(
    fc.record(
      {
        type: fc.constant('subscribe'),
        topic,
        subtopics: fc.record({ levels: fc.constantFrom('L1', 'L2', 'L1,L2', ' L2 , L1 '), trades: fc.boolean() }, { requiredKeys: [] }),
        resume_from_seq: fc.nat(60),
        epoch: fc.string({ maxLength: 12 }),
        compression: fc.boolean(),
        batch_size: fc.integer({ min: 1, max: 1000 }),
        ...correlation,
      },
      { requiredKeys: ['type', 'topic'] },
    ),
    fc.record({ type: fc.constant('unsubscribe'), topic, ...correlation }, { requiredKeys: ['type', 'topic'] }),
    fc.record({ type: fc.constant('ping'), ...correlation }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('background_mode'), enabled: fc.boolean(), ...correlation }, { requiredKeys: ['type', 'enabled'] }),
    fc.record({ type: fc.constant('refresh'), token, ...correlation }, { requiredKeys: ['type', 'token'] }),
    fc.record(
      {
        type: fc.constant('replay'),
        topic,
        from_seq: fc.integer({ min: -2, max: 80 }),
        to_seq: fc.integer({ min: -2, max: 80 }),
        since: fc.constantFrom('2026-01-01T00:00:00Z', '2026-13-01T00:00:00Z', 'yesterday', new Date(Date.now() - 60_000).toISOString()),
        until: fc.constantFrom('2999-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'now', new Date().toISOString()),
        speed: fc.constantFrom(0, 1, 10, -1, 1e9, 0.5),
        ...correlation,
      },
      { requiredKeys: ['type', 'topic'] },
    ),
  );
}

/** A valid message with one field replaced, removed or added. */
function message(system: TestSystem) {
  // Half the messages stay valid, so subscribes and resumes really run while the rest probe the edges.
  const op = fc.oneof({ weight: 3, arbitrary: fc.constant('keep') }, { weight: 3, arbitrary: fc.constantFrom('set', 'delete', 'add') });
  const mutation = fc.record({ op, pick: fc.nat(), key: fc.string({ maxLength: 12 }), value: wildValue });
  return fc.tuple(validMessage(system), mutation).map(([valid, { op, pick, key, value }]) => {
    const out: Record<string, unknown> = { ...valid };
    const keys = Object.keys(out);
    const field = keys[pick % keys.length] as string;
    if (op === 'set') out[field] = value;
    else if (op === 'delete') delete out[field];
    else if (op === 'add') out[key] = value;
    return out;
  });
}

/** What one fuzz case sends on the plain WebSocket API. */
type WsFrame = { text: string } | { binary: Uint8Array };

function wsFrame(system: TestSystem): fc.Arbitrary<WsFrame> {
  return fc.oneof(
    { weight: 6, arbitrary: message(system).map((m) => ({ text: JSON.stringify(m) })) },
    { weight: 1, arbitrary: message(system).map((m) => ({ text: JSON.stringify(m).slice(0, -1) })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 80 }).map((text) => ({ text })) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ text: JSON.stringify(v) })) },
    { weight: 1, arbitrary: fc.integer({ min: 10, max: 20_000 }).map((depth) => ({ text: `{"type":"subscribe","topic":${deepText(depth)}}` })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((binary) => ({ binary })) },
  );
}

/** What one fuzz case sends on Socket.IO: an emit (kind, payload) with an ack, or a raw EVENT packet. */
type SioCase = { kind: string; data: unknown[] } | { rawPacket: string };

function sioCase(system: TestSystem): fc.Arbitrary<SioCase> {
  const kind = fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'background_mode', 'refresh', 'replay', 'toString', '__proto__', ''), fc.string({ maxLength: 20 })).filter((k) => !RESERVED_EVENTS.has(k));
  return fc.oneof(
    { weight: 5, arbitrary: message(system).map((m) => ({ kind: String(m['type'] ?? 'subscribe'), data: [m] })) },
    { weight: 2, arbitrary: fc.tuple(kind, message(system)).map(([k, m]) => ({ kind: k, data: [m] })) },
    { weight: 1, arbitrary: message(system).map((m) => ({ kind: String(m['type'] ?? 'ping'), data: [JSON.stringify(m)] })) },
    { weight: 1, arbitrary: fc.tuple(kind, fc.array(wildValue, { maxLength: 3 })).map(([k, data]) => ({ kind: k, data })) },
    { weight: 1, arbitrary: fc.tuple(kind, fc.string({ maxLength: 60 })).map(([k, text]) => ({ kind: k, data: [text] })) },
    { weight: 1, arbitrary: fc.integer({ min: 10, max: 20_000 }).map((depth) => ({ rawPacket: `2/market,["subscribe",{"topic":${deepText(depth)}}]` })) },
  );
}

// --- checks ----------------------------------------------------------------------------------------

/** Every reply is a documented envelope, and no input is a server bug. */
function checkReplies(replies: Envelope[]): void {
  for (const reply of replies) {
    expect(REPLY_TYPES.has(reply.type), JSON.stringify(reply).slice(0, 300)).toBe(true);
    expect(typeof reply.ts).toBe('string');
    expect(typeof reply.meta).toBe('object');
    if (reply.type !== 'error') continue;
    const { code, error } = reply as Envelope & { code: string; error: unknown };
    expect(isErrorCode(code), `undocumented code ${code}`).toBe(true);
    expect(code, JSON.stringify(reply).slice(0, 300)).not.toBe('INTERNAL_ERROR');
    expect(typeof error).toBe('string');
  }
}

/** A subscriber on TOPIC over each transport, fed every 5 ms while the fuzzing runs. */
async function withCanaries(run: () => Promise<void>): Promise<void> {
  const sio = await connect(system.server.url, '/market', system.token('canary'));
  const sioSeqs = new SeqChecker();
  sioSeqs.attach(sio);
  expect(await request(sio, 'subscribe', { topic: TOPIC })).toMatchObject({ type: 'ack' });
  const ws = await openClient('websocket', system.server.url, 'market', ISIN, system.token('canary'));
  let published = 0;
  let feeding = true;
  const feed = (async () => {
    while (feeding) {
      if ((await system.ingest.submit(quote(ISIN, 99 + (published % 10) / 100, 99.5), 'fuzz-canary')).status === 'applied') published++;
      await sleep(5);
    }
  })();
  try {
    await run();
  } finally {
    feeding = false;
    await feed;
  }
  const head = (await system.backends.store.readAfter(TOPIC, Number.MAX_SAFE_INTEGER, 0)).headSeq;
  const wsSeqs = new SeqChecker();
  await waitFor(() => sioSeqs.last.get(TOPIC) === head && ws.received.some((e) => e.topic === TOPIC && e.seq === head), 5000, 'canaries at the head');
  for (const e of ws.received.filter((env) => env.topic === TOPIC)) {
    if (e.type === 'snapshot') wsSeqs.onSnapshot(e);
    else if (e.type === 'delta') wsSeqs.onEntry(e);
  }
  expect(sioSeqs.violations).toEqual([]);
  expect(wsSeqs.violations).toEqual([]);
  expect(published).toBeGreaterThan(20);
  expect(await request(sio, 'ping', {})).toMatchObject({ type: 'pong' });
  expect((await fetch(`${system.server.url}/livez`)).status).toBe(200);
  sio.close();
  ws.close();
}

/**
 * The property for one connection: each case sends one fuzz message, then a probe ping that must be
 * answered (it keeps the pace and proves the connection still works). Afterwards every message, probes
 * included, must have exactly one reply, each documented. `replies` is filled by the connection.
 */
async function fuzzConnection<T>(cases: fc.Arbitrary<T>, send: (c: T) => void, probe: () => Promise<void>, replies: Envelope[], answeredBefore: number): Promise<void> {
  let sent = answeredBefore;
  await fc.assert(
    fc.asyncProperty(cases, async (c) => {
      send(c);
      sent += 2;
      await probe();
    }),
    { numRuns: 200 },
  );
  // Slow replies (a resume waiting for its seq) may still be on the way.
  await waitFor(() => replies.length >= sent, 5000, `${sent} replies (have ${replies.length})`);
  expect(replies.length).toBe(sent);
  checkReplies(replies);
}

describe('client protocol fuzz', () => {
  it('plain WebSocket: every frame answered once with a documented envelope; canaries contiguous', async () => {
    await withCanaries(async () => {
      const ws = new WebSocket(`${system.server.url.replace('http', 'ws')}/api/v1/ws/market/${ISIN}?token=${system.token(USER)}`);
      const replies: Envelope[] = [];
      ws.on('message', (data) => {
        const env = JSON.parse(data.toString()) as Envelope;
        if (REPLY_TYPES.has(env.type)) replies.push(env);
      });
      await new Promise((resolve) => ws.once('open', resolve));
      await waitFor(() => replies.length === 1, 5000, 'path subscribe ack');
      let probes = 0;
      await fuzzConnection(
        wsFrame(system),
        (frame) => ws.send('text' in frame ? frame.text : frame.binary, { binary: !('text' in frame) }),
        async () => {
          const id = `probe-${++probes}`;
          ws.send(JSON.stringify({ type: 'ping', correlation_id: id }));
          await waitFor(() => replies.some((r) => r.correlation_id === id), 5000, `pong ${id}`);
          expect(ws.readyState).toBe(WebSocket.OPEN);
        },
        replies,
        1,
      );
      ws.close();
    });
  }, 30_000);

  it('Socket.IO: every emit answered once with a documented envelope; canaries contiguous', async () => {
    await withCanaries(async () => {
      const socket: Socket = await connect(system.server.url, '/market', system.token(USER));
      const replies: Envelope[] = [];
      // Every reply is also emitted as an event of its type: the count covers raw packets, which carry no ack.
      socket.onAny((type: string, env: Envelope) => {
        if (REPLY_TYPES.has(type)) replies.push(env);
      });
      await fuzzConnection(
        sioCase(system),
        (c) => ('rawPacket' in c ? socket.io.engine.write(c.rawPacket) : socket.emit(c.kind, ...c.data)),
        async () => {
          expect(await request(socket, 'ping', {}, 5000)).toMatchObject({ type: 'pong' });
          expect(socket.connected).toBe(true);
        },
        replies,
        0,
      );
      socket.close();
    });
  }, 30_000);
});
