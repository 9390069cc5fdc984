import { randomBytes } from 'node:crypto';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Envelope } from '../../src/protocol/messages.js';
import type { ReplayEnd } from '../../src/replay/replay.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { openClient, TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * GET /api/v1/replay and /api/v1/replay/state against real servers, in memory and on Redis
 * (HISTORY_MAX_LEN=100, so histories are trimmed): ranges by seq and time at their edges, both formats
 * read back, roles and parameters, the trailer of a partial range, streaming under backpressure, and
 * a replay equal line for line to what live clients received.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay HTTP tests');
const PREFIX = `replay-http-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const TOTAL = 150;

interface Got {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
  trailers: NodeJS.Dict<string>;
}

/** A GET through node:http, which (unlike fetch) exposes the HTTP trailers. */
function get(system: TestSystem, path: string, role: string | null = 'auditor'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = role ? { authorization: `Bearer ${system.token('replay-test', role)}` } : {};
    httpGet(`${system.server.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), trailers: res.trailers }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** An NDJSON replay: its envelopes and its trailer line (checked against the HTTP trailer). */
function ndjson(got: Got): { envelopes: Envelope[]; end: ReplayEnd } {
  expect(got.status, got.body).toBe(200);
  expect(got.headers['content-type']).toBe('application/x-ndjson');
  expect(got.body.endsWith('\n')).toBe(true);
  const lines = got.body.slice(0, -1).split('\n').map((line) => JSON.parse(line) as unknown);
  const end = lines.pop() as ReplayEnd;
  expect(end.type).toBe('replay_end');
  expect(JSON.parse(got.trailers['x-replay-end'] ?? 'null')).toEqual(end);
  return { envelopes: lines as Envelope[], end };
}

const query = (params: Record<string, string | number>) => `/api/v1/replay?${new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)]))}`;

let redis: Redis;
const systems: Record<string, TestSystem> = {};

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  systems.memory = await startTestSystem({ HISTORY_MAX_LEN: '100' });
  systems.redis = await startTestSystem({ HISTORY_MAX_LEN: '100', REDIS_URL, REDIS_PREFIX: PREFIX });
  for (const system of Object.values(systems)) {
    for (let i = 0; i < TOTAL; i++) await system.ingest.submit(quote(ISIN, 99 + i / 1000, 99.6), 'test');
  }
});

afterAll(async () => {
  for (const system of Object.values(systems)) await system.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

describe.each(['memory', 'redis'])('replay over HTTP (%s store)', (name) => {
  const system = () => systems[name] as TestSystem;
  /** The store's held history of the topic, what every expectation below is computed from. */
  const held = async (): Promise<HistoryEntry[]> => (await system().backends.store.readAfter(TOPIC, 0, 10_000)).entries;

  it('by seq: the held part of 1..head+5, with the trimmed and not-yet-committed parts in the trailer and the plan header', async () => {
    const entries = await held();
    const first = entries[0]?.seq as number;
    expect(first).toBeGreaterThan(1);
    expect(entries.at(-1)?.seq).toBe(TOTAL);
    const got = await get(system(), query({ topic: TOPIC, from_seq: 1, to_seq: TOTAL + 5 }));
    const { envelopes, end } = ndjson(got);
    expect(envelopes.map((e) => e.seq)).toEqual(entries.map((e) => e.seq));
    expect(envelopes[0]).toEqual({ type: 'delta', topic: TOPIC, seq: first, ts: entries[0]?.ts, payload: entries[0]?.payload, meta: { event_ts: entries[0]?.event_ts, epoch: entries[0]?.epoch, hash: entries[0]?.hash }, correlation_id: entries[0]?.event_id });
    const missing = [
      { from_seq: 1, to_seq: first - 1, reason: 'trimmed' },
      { from_seq: TOTAL + 1, to_seq: TOTAL + 5, reason: 'beyond_head' },
    ];
    expect(end).toEqual({ type: 'replay_end', topic: TOPIC, epoch: entries[0]?.epoch, from_seq: first, to_seq: TOTAL, count: entries.length, first_seq: first, head_seq: TOTAL, asked: { from_seq: 1, to_seq: TOTAL + 5 }, missing });
    expect(JSON.parse(got.headers['x-replay-plan'] as string)).toEqual({ topic: TOPIC, epoch: entries[0]?.epoch, from_seq: first, to_seq: TOTAL, first_seq: first, head_seq: TOTAL, missing });
  });

  it('by seq: the first held, the last, and a range wholly beyond the head', async () => {
    const first = (await held())[0]?.seq as number;
    expect(ndjson(await get(system(), query({ topic: TOPIC, from_seq: first, to_seq: first }))).envelopes.map((e) => e.seq)).toEqual([first]);
    expect(ndjson(await get(system(), query({ topic: TOPIC, from_seq: TOTAL, to_seq: TOTAL }))).envelopes.map((e) => e.seq)).toEqual([TOTAL]);
    const beyond = ndjson(await get(system(), query({ topic: TOPIC, from_seq: TOTAL + 1 })));
    expect(beyond.envelopes).toEqual([]);
    expect(beyond.end).toMatchObject({ count: 0, from_seq: null, to_seq: null, missing: [{ from_seq: TOTAL + 1, to_seq: null, reason: 'beyond_head' }] });
  });

  it('by time: since inclusive, until exclusive, at the edges of the held history', async () => {
    const entries = await held();
    const tsOf = (i: number) => entries[i]?.ts as string;
    // Entries committed within one millisecond share a ts: an `until` must be a later one.
    const laterThan = (i: number) => entries.find((e) => e.ts > tsOf(i))?.ts as string;
    const expected = (since: string, until?: string) => entries.filter((e) => e.ts >= since && (until === undefined || e.ts < until)).map((e) => e.seq);
    for (const [since, until] of [
      [tsOf(10), laterThan(30)],
      [tsOf(0), laterThan(0)],
      [tsOf(entries.length - 1), undefined],
      [new Date(Date.parse(tsOf(entries.length - 1)) + 1).toISOString(), undefined],
    ] as const) {
      const got = ndjson(await get(system(), query({ topic: TOPIC, since, ...(until ? { until } : {}) })));
      expect(got.envelopes.map((e) => e.seq), `${since}..${until}`).toEqual(expected(since, until));
      expect(got.end.asked).toEqual({ since, until: until ?? null });
    }
    // From before the first held entry: the trimmed entries may be in the range, and the trailer says so.
    const all = ndjson(await get(system(), query({ topic: TOPIC, since: '2000-01-01' })));
    expect(all.envelopes.map((e) => e.seq)).toEqual(entries.map((e) => e.seq));
    expect(all.end.missing).toEqual([{ from_seq: 1, to_seq: (entries[0]?.seq as number) - 1, reason: 'trimmed' }]);
  });

  it('CSV: header, one RFC 4180 row per entry, payload fields per kind; the trailer in the HTTP trailer', async () => {
    const entries = await held();
    const got = await get(system(), query({ topic: TOPIC, from_seq: 1, format: 'csv' }));
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    const rows = parseCsv(got.body, { columns: true, record_delimiter: '\r\n' }) as Record<string, string>[];
    expect(rows.map((r) => Number(r.seq))).toEqual(entries.map((e) => e.seq));
    const [row, entry] = [rows[0] as Record<string, string>, entries[0] as HistoryEntry];
    expect(row).toMatchObject({ ts: entry.ts, type: 'delta', epoch: entry.epoch, event_id: entry.event_id, kind: 'l1', 'l1.bid': String(entry.payload.bid), 'l1.ask': '99.6', 'l1.bid_yield': '', 'trade.price': '', other: '' });
    const end = JSON.parse(got.trailers['x-replay-end'] ?? 'null') as ReplayEnd;
    expect(end).toMatchObject({ count: entries.length, missing: [{ from_seq: 1, to_seq: entry.seq - 1, reason: 'trimmed' }] });
  });

  it('only auditor and operator may replay; no token is 401', async () => {
    for (const role of ['auditor', 'operator']) expect((await get(system(), query({ topic: TOPIC, from_seq: TOTAL }), role)).status).toBe(200);
    for (const role of ['publisher', 'trader']) {
      const refused = await get(system(), query({ topic: TOPIC }), role);
      expect(refused.status).toBe(403);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'FORBIDDEN', details: { reason: 'role auditor or operator required' } });
    }
    expect((await get(system(), query({ topic: TOPIC }), null)).status).toBe(401);
    expect((await get(system(), `/api/v1/replay/state?topic=${TOPIC}&at=2026-01-01`, 'publisher')).status).toBe(403);
  });

  it.each<[string, string]>([
    ['/api/v1/replay', 'topic is required'],
    [query({ topic: 'prices.XX' }), "topic 'prices.XX' is not a topic that can exist"],
    [query({ topic: TOPIC, from_seq: 'x' }), 'from_seq must be an integer 1..9007199254740991'],
    [query({ topic: TOPIC, from_seq: 5, to_seq: 4 }), 'to_seq (4) is before from_seq (5)'],
    [query({ topic: TOPIC, from_seq: 1, until: '2026-01-01' }), 'give a range by seq (from_seq, to_seq) or by time (since, until), not both'],
    [query({ topic: TOPIC, since: '2026-01-01T10:00' }), "since must be an ISO-8601 date, or time with a zone, e.g. 2026-11-26T10:00:00Z (got '2026-01-01T10:00')"],
    [query({ topic: TOPIC, format: 'xlsx' }), 'format must be one of ndjson, csv'],
    [`${query({ topic: TOPIC })}&from=1`, "unknown query parameter 'from' (this route reads topic, from_seq, to_seq, since, until, format, source, epoch)"],
    [query({ topic: TOPIC, source: 'disk' }), 'source must be one of auto, redis, kafka'],
    [`${query({ topic: TOPIC, from_seq: 1 })}&from_seq=2`, "query parameter 'from_seq' given more than once"],
    [`/api/v1/replay/state?topic=${TOPIC}`, 'at is required (an ISO-8601 time)'],
    [`/api/v1/replay/state?topic=${TOPIC}&at=2999-01-01T00:00:00Z`, 'at (2999-01-01T00:00:00.000Z) is in the future'],
  ])('%s is 400 with the reason', async (path, reason) => {
    const got = await get(system(), path);
    expect(got.status).toBe(400);
    expect(JSON.parse(got.body)).toMatchObject({ type: 'error', code: 'INVALID_MESSAGE', details: { reason } });
  });

  it('state: at or after the last entry is the current snapshot; earlier is 501 with the reason', async () => {
    const entries = await held();
    const last = entries.at(-1) as HistoryEntry;
    const snapshot = await system().backends.store.snapshot(TOPIC);
    const now = await get(system(), `/api/v1/replay/state?topic=${TOPIC}&at=${new Date().toISOString()}`);
    expect(now.status).toBe(200);
    expect(JSON.parse(now.body)).toEqual({ type: 'snapshot', topic: TOPIC, seq: TOTAL, ts: snapshot?.ts, payload: snapshot?.state, meta: { epoch: last.epoch }, correlation_id: null });
    expect((await get(system(), `/api/v1/replay/state?topic=${TOPIC}&at=${last.ts}`)).status).toBe(200);
    const before = await get(system(), `/api/v1/replay/state?topic=${TOPIC}&at=${new Date(Date.parse(last.ts) - 1).toISOString()}`);
    expect(before.status).toBe(501);
    expect(JSON.parse(before.body)).toMatchObject({ code: 'NOT_IMPLEMENTED', details: { topic: TOPIC, last_entry_ts: last.ts } });
    expect((await get(system(), `/api/v1/replay/state?topic=prices.IN0020240019&at=${new Date().toISOString()}`)).status).toBe(501);
  });

  it('a live client on each transport records every delta; the replay of that range is the same envelopes, line for line', async () => {
    const isin = 'IN0020240019';
    const topic = `prices.${isin}`;
    const clients = await Promise.all(TRANSPORTS.map((transport) => openClient(transport, system().server.url, 'market', isin, system().token('live', undefined))));
    try {
      // Replay lines carry meta.hash, as the deltas of a subscriber that asks for integrity do.
      for (const client of clients) expect(await client.request('subscribe', { topic, integrity: true })).toMatchObject({ type: 'ack' });
      for (let i = 0; i < 60; i++) await system().ingest.submit(quote(isin, 98 + i / 100, 98.5), 'test');
      const live = () => clients.map((c) => c.received.filter((e) => e.topic === topic && e.type === 'delta'));
      await waitFor(() => live().every((deltas) => deltas.length === 60), 10_000, 'every live delta');
      const replayed = ndjson(await get(system(), query({ topic, from_seq: 1, to_seq: 60 }))).envelopes;
      for (const deltas of live()) expect(replayed).toEqual(deltas);
    } finally {
      for (const client of clients) client.close();
    }
  });
});

describe('a large replay streams under backpressure (memory store)', () => {
  it('a client that stops reading stops the server reading the store; resumed, every entry arrives', async () => {
    const system = await startTestSystem({ HISTORY_MAX_LEN: '200000' });
    try {
      const topic = 'prices.IN0020192905';
      const total = 100_000;
      const store = system.backends.store;
      const payload = { kind: 'l1', bid: 99.5, ask: 99.6, bid_size: 5_000_000, ask_size: 5_000_000, bid_yield: null, ask_yield: null, mid: 99.55, spread: 0.1, ts: new Date().toISOString() };
      for (let i = 1; i <= total; i++) await store.commit({ eventId: `big-${i}`, eventTs: payload.ts, changes: [{ topic, type: 'delta', payload, state: {} }] });
      const reads: number[] = [];
      const readAfter = store.readAfter.bind(store);
      vi.spyOn(store, 'readAfter').mockImplementation((t, after, limit) => {
        if (t === topic && limit > 0) reads.push(after);
        return readAfter(t, after, limit);
      });

      const res = await new Promise<IncomingMessage>((resolve, reject) => httpGet(`${system.server.url}${query({ topic, from_seq: 1 })}`, { headers: { authorization: `Bearer ${system.token('big', 'auditor')}` } }, resolve).on('error', reject));
      expect(res.statusCode).toBe(200);
      // Read the first bytes, then stop reading for a while.
      const firstChunk = await new Promise<Buffer>((resolve) => res.once('data', resolve));
      res.pause();
      expect(firstChunk.toString('utf8')).toMatch(/^\{"type":"delta","topic":"prices.IN0020192905","seq":1,/);
      await sleep(500);
      const readWhilePaused = Math.max(...reads);
      await sleep(300);
      expect(Math.max(...reads), 'the server kept reading while the client did not').toBe(readWhilePaused);
      // Socket and kernel buffers hold a few MB at most: far from the ~30 MB of the whole range.
      expect(readWhilePaused).toBeLessThan(total / 3);

      let bytes = firstChunk.length;
      let tail = '';
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        tail = (tail + chunk.toString('utf8')).slice(-2000);
      });
      res.resume();
      await new Promise((resolve) => res.once('end', resolve));
      const end = JSON.parse(tail.trimEnd().split('\n').at(-1) as string) as ReplayEnd;
      expect(end).toMatchObject({ count: total, from_seq: 1, to_seq: total, missing: [] });
      expect(bytes).toBeGreaterThan(total * 200);
      expect(reads).toHaveLength(total / 1000);
    } finally {
      await system.close();
    }
  });
});
