import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/protocol/messages.js';
import type { ReplayAck } from '../../src/protocol/socketio-events.js';
import { openClient, TRANSPORTS, type TestClient, type Transport } from '../support/clients.js';
import { quote } from '../support/events.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * The live `replay` message on both transports, on a Redis store: the range served is exactly the
 * HTTP replay's lines (marked meta.replay), live deltas of the same topic keep flowing meanwhile,
 * the recorded pace is honoured times speed, and refusals are the subscribe's.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the live replay tests');
const PREFIX = `replay-live-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
/** Entries committed 100 ms apart, after the fast ones. */
const FAST = 50;
const PACED = 8;

let redis: Redis;
let system: TestSystem;

/** The HTTP replay's envelope lines for from..to (its trailer line dropped). */
function httpReplay(from: number, to: number): Promise<Envelope[]> {
  return new Promise((resolve, reject) => {
    const headers = { authorization: `Bearer ${system.token('replay-live', 'auditor')}` };
    httpGet(`${system.server.url}/api/v1/replay?topic=${TOPIC}&from_seq=${from}&to_seq=${to}`, { headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve(body.trim().split('\n').slice(0, -1).map((line) => JSON.parse(line) as Envelope)));
      res.on('error', reject);
    }).on('error', reject);
  });
}

const replayed = (client: TestClient) => client.received.filter((e) => e.topic === TOPIC && e.meta['replay'] === true);
const live = (client: TestClient) => client.received.filter((e) => e.topic === TOPIC && e.type === 'delta' && e.meta['replay'] === undefined);
const withoutReplayMark = (envelope: Envelope): Envelope => {
  const { replay: _replay, ...meta } = envelope.meta;
  return { ...envelope, meta };
};

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
  for (let i = 0; i < FAST; i++) await system.ingest.submit(quote(ISIN, 99 + i / 1000, 99.6), 'test');
  for (let i = 0; i < PACED; i++) {
    await system.ingest.submit(quote(ISIN, 98 + i / 1000, 98.6), 'test');
    await sleep(100);
  }
});

afterAll(async () => {
  await system.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

async function open(transport: Transport, stream: 'market' | 'trading' = 'market', user = 'alice'): Promise<TestClient> {
  return openClient(transport, system.server.url, stream, stream === 'market' ? ISIN : user, system.token(user));
}

describe.each(TRANSPORTS)('live replay over %s', (transport) => {
  it('serves exactly the range, as the HTTP replay lines marked meta.replay, and acks what was served and missing', async () => {
    const client = await open(transport);
    try {
      // The head: this file's committed entries, and the live ones of the other transport's run.
      const head = ((await client.request('subscribe', { topic: TOPIC })).seq as number) ;
      const ack = await client.request('replay', { topic: TOPIC, from_seq: 5, to_seq: 1000, speed: 0 });
      expect(ack).toMatchObject({ type: 'ack', topic: TOPIC });
      const payload = ack.payload as ReplayAck;
      expect(payload).toMatchObject({ action: 'replay', cancelled: false, from_seq: 5, to_seq: head, count: head - 4, head_seq: head, asked: { from_seq: 5, to_seq: 1000 }, missing: [{ from_seq: head + 1, to_seq: 1000, reason: 'beyond_head' }] });
      const got = replayed(client);
      expect(got.every((e) => e.type === 'delta')).toBe(true);
      expect(got.map(withoutReplayMark)).toEqual(await httpReplay(5, head));
    } finally {
      client.close();
    }
  });

  it('by commit time: since (inclusive) .. until (exclusive), the same entries the HTTP replay gives for that range', async () => {
    const client = await open(transport);
    try {
      const all = await httpReplay(1, FAST + PACED);
      // The paced entries are 100 ms apart: since on the 2nd of them, until on the 6th.
      const since = (all[FAST + 1] as Envelope).ts;
      const until = (all[FAST + 5] as Envelope).ts;
      const ack = await client.request('replay', { topic: TOPIC, since, until, speed: 0 });
      const expected = all.filter((e) => e.ts >= since && e.ts < until);
      expect(expected.length).toBeGreaterThanOrEqual(4);
      expect(ack.payload).toMatchObject({ action: 'replay', cancelled: false, count: expected.length, from_seq: expected[0]?.seq, to_seq: expected.at(-1)?.seq, asked: { since, until }, missing: [] });
      expect(replayed(client).map(withoutReplayMark)).toEqual(expected);
    } finally {
      client.close();
    }
  });

  it('keeps the live subscription of the same topic flowing during a replay', async () => {
    const client = await open(transport);
    try {
      const subscribed = await client.request('subscribe', { topic: TOPIC });
      const head = subscribed.seq as number;
      // Speed 1 over the paced entries: about 700 ms, during which live quotes are committed.
      const replay = client.request('replay', { topic: TOPIC, from_seq: FAST + 1, to_seq: FAST + PACED, speed: 1 });
      await waitFor(() => replayed(client).length >= 2, 5000, 'replay started');
      for (let i = 0; i < 5; i++) await system.ingest.submit(quote(ISIN, 97 + i / 1000, 97.6), 'test');
      await waitFor(() => live(client).length === 5, 5000, 'live deltas');
      // Live deltas arrived while the replay was still playing, contiguous after the subscribe's head.
      expect(replayed(client).length).toBeLessThan(PACED);
      expect(live(client).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5].map((n) => head + n));
      expect((await replay).payload).toMatchObject({ action: 'replay', cancelled: false, count: PACED });
      expect(replayed(client).map((e) => e.seq)).toEqual(Array.from({ length: PACED }, (_, i) => FAST + 1 + i));
    } finally {
      client.close();
    }
  });

  it('plays at the recorded pace times speed', async () => {
    const client = await open(transport);
    try {
      const started = Date.now();
      await client.request('replay', { topic: TOPIC, from_seq: FAST + 1, to_seq: FAST + PACED, speed: 10 });
      const elapsed = Date.now() - started;
      // 7 gaps of ~100 ms at speed 10: ~70 ms; at speed 1 it would be ~700 ms.
      expect(elapsed).toBeGreaterThanOrEqual(50);
      expect(elapsed).toBeLessThan(500);
      // The entries themselves were committed ~700 ms apart end to end.
      const [first, ...rest] = replayed(client).map((e) => Date.parse(e.ts));
      expect((rest.at(-1) ?? 0) - (first ?? 0)).toBeGreaterThanOrEqual(600);
    } finally {
      client.close();
    }
  });

  it('is cancelled by replay_stop and by a second replay', async () => {
    const client = await open(transport);
    try {
      const slow = client.request('replay', { topic: TOPIC, from_seq: FAST + 1, to_seq: FAST + PACED, speed: 0.1 });
      await waitFor(() => replayed(client).length === 1, 5000, 'first entry');
      expect((await client.request('replay_stop', {})).payload).toEqual({ action: 'replay_stop', stopped: true });
      expect((await slow).payload).toMatchObject({ action: 'replay', cancelled: true, count: 1, from_seq: FAST + 1, to_seq: FAST + 1 });
      const first = client.request('replay', { topic: TOPIC, from_seq: FAST + 1, speed: 0.1 });
      await waitFor(() => replayed(client).length === 2, 5000, 'second replay started');
      const second = await client.request('replay', { topic: TOPIC, from_seq: 1, to_seq: 3, speed: 0 });
      expect((await first).payload).toMatchObject({ cancelled: true, count: 1 });
      expect(second.payload).toMatchObject({ cancelled: false, count: 3 });
      expect((await client.request('replay_stop', {})).payload).toEqual({ action: 'replay_stop', stopped: false });
    } finally {
      client.close();
    }
  });

  it("refuses another user's topic with FORBIDDEN and bad parameters with INVALID_MESSAGE", async () => {
    const trading = await open(transport, 'trading', 'alice');
    const market = await open(transport);
    try {
      expect(await trading.request('replay', { topic: 'trading.bob' })).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
      for (const bad of [{ speed: -1 }, { from_seq: 0 }, { from_seq: 5, to_seq: 4 }, { speed: 'fast' }, { seek: 3 }, { since: 'yesterday' }, { since: '2026-11-26T10:00:00' }, { from_seq: 1, since: '2026-11-26' }, { since: '2026-11-27', until: '2026-11-26' }]) {
        expect(await market.request('replay', { topic: TOPIC, ...bad }), JSON.stringify(bad)).toMatchObject({ type: 'error', code: 'INVALID_MESSAGE' });
      }
      expect(replayed(market)).toEqual([]);
    } finally {
      trading.close();
      market.close();
    }
  });
});
