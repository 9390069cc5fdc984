import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createKafka, createProducer } from '../../src/ingest/kafka/kafka-client.js';
import { kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { openClient, type TestClient } from '../support/clients.js';
import { book, ladder, quote } from '../support/events.js';
import { runBondx } from '../support/processes.js';
import { connectRedis, deleteKeys, dropRun, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * Issue 10 §4 end to end, on real Kafka and Redis with HISTORY_MAX_LEN=100: 2,000 events through Kafka;
 * a live client records every delta; the replay of 1..2,000 — all but the last ~100 rebuilt from Kafka —
 * is those deltas entry for entry, over HTTP and through `bondx replay` (same bytes), and again after the
 * projector restarts. The state at an instant answers the same through both. After Redis is wiped (the
 * topic re-projected under a new epoch, more events on top) each epoch replays as it was served: the old
 * one by name, the new one as the topic's current history.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay-from-Kafka e2e test');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the replay-from-Kafka e2e test');
const RUN = `rk-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const EVENTS = 2000;
const ENV = { REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '2', HISTORY_MAX_LEN: '100', REPLAY_CHECKPOINT_EVERY: '250' };

let kafka: Kafka;
let system: TestSystem;
let client: TestClient;
let dir: string;
let deltas: Envelope[] = [];

beforeAll(async () => {
  kafka = createKafka(loadConfig({ ...ENV, LOG_LEVEL: 'silent' }), silentLogger, '-test');
  system = await startTestSystem(ENV);
  dir = mkdtempSync(join(tmpdir(), 'bondx-replay-kafka-'));
  client = await openClient('websocket', system.server.url, 'market', ISIN, system.token('live'));
  expect(await client.request('subscribe', { topic: TOPIC, integrity: true })).toMatchObject({ type: 'ack' });
  await produce(0, EVENTS);
  const live = () => client.received.filter((e) => e.topic === TOPIC && e.type === 'delta');
  await waitFor(() => live().length === EVENTS, 30_000, 'every delta live');
  deltas = live();
}, 60_000);

afterAll(async () => {
  client?.close();
  await system?.close();
  await dropRun(kafka, REDIS_URL, RUN);
  rmSync(dir, { recursive: true, force: true });
});

/** Sends `count` more events of the topic (quotes and books, as before), numbered from `from`. */
async function produce(from: number, count: number): Promise<void> {
  const producer = createProducer(kafka, false);
  await producer.connect();
  for (let i = from; i < from + count; i += 100) {
    const messages = Array.from({ length: Math.min(100, from + count - i) }, (_, k) => {
      const n = i + k;
      const event = n % 4 === 0 ? book(ISIN, n % 8 === 0 ? 'bid' : 'ask', ladder(n % 8 === 0 ? 'bid' : 'ask', 3, n)) : quote(ISIN, 99 + (n % 40) / 100, 99.5 + (n % 40) / 100);
      return { key: ISIN, value: JSON.stringify(event) };
    });
    await producer.send({ topic: kafkaTopic(RUN, 'market'), messages });
  }
  await producer.disconnect();
}

async function overHttp(path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${system.server.url}${path}`, { headers: { authorization: `Bearer ${system.token('auditor-1', 'auditor')}` } });
  return { status: res.status, body: await res.text() };
}

function envelopes(ndjson: string): { lines: Envelope[]; end: { missing: unknown[]; count: number } } {
  const all = ndjson.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
  return { lines: all.slice(0, -1) as Envelope[], end: all.at(-1) as { missing: unknown[]; count: number } };
}

describe('replay rebuilt from Kafka, end to end', () => {
  it('HTTP and the CLI: 1..2,000 (mostly from Kafka) equal the live deltas, the same bytes both ways', async () => {
    expect((await system.backends.store.readAfter(TOPIC, 0, 0)).firstSeq).toBeGreaterThan(EVENTS - 300);
    const http = await overHttp(`/api/v1/replay?topic=${TOPIC}&from_seq=1&to_seq=${EVENTS}`);
    expect(http.status).toBe(200);
    const { lines, end } = envelopes(http.body);
    expect(end).toMatchObject({ count: EVENTS, missing: [] });
    expect(lines).toEqual(deltas);

    const out = join(dir, 'replay.ndjson');
    const run = runBondx(['replay', TOPIC, '--from-seq', '1', '--to-seq', String(EVENTS), '--out', out], { ...ENV, LOG_LEVEL: 'silent' });
    expect(await run.exited(30_000), run.stderr()).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(http.body);
  });

  it('the state at an instant in the rebuilt part: the same over HTTP and the CLI, at the seq of the last entry at or before it', async () => {
    const at = (deltas[700] as Envelope).ts;
    const expectedSeq = deltas.filter((d) => d.ts <= at).length;
    const http = await overHttp(`/api/v1/replay/state?topic=${TOPIC}&at=${at}`);
    expect(http.status).toBe(200);
    expect(JSON.parse(http.body)).toMatchObject({ type: 'snapshot', topic: TOPIC, seq: expectedSeq, ts: (deltas[expectedSeq - 1] as Envelope).ts });
    const run = runBondx(['replay', TOPIC, '--at', at], { ...ENV, LOG_LEVEL: 'silent' });
    expect(await run.exited(30_000), run.stderr()).toBe(0);
    expect(run.stdout()).toBe(`${http.body}\n`);
  });

  it('after a projector restart the replay is the same', async () => {
    client.close();
    await system.close();
    system = await startTestSystem(ENV);
    const http = await overHttp(`/api/v1/replay?topic=${TOPIC}&from_seq=1&to_seq=${EVENTS}&source=kafka`);
    expect(envelopes(http.body).lines).toEqual(deltas);
  }, 30_000);

  it('after Redis is wiped: the old epoch by name and the new one as the current history, each as it was served, over HTTP and the CLI', async () => {
    const old = String((deltas[0] as Envelope).meta.epoch);
    const watcher = await openClient('websocket', system.server.url, 'market', ISIN, system.token('live-2'));
    const sent = (epoch: string) => watcher.received.filter((e) => e.topic === TOPIC && e.type === 'delta' && e.meta.epoch === epoch);
    try {
      expect(await watcher.request('subscribe', { topic: TOPIC, integrity: true })).toMatchObject({ type: 'ack' });
      // A few more under the old epoch, past its last checkpoint (2,000): the projector (restarted above)
      // knows the topic again, so it notices the wipe at its next commit and re-projects from Kafka.
      await produce(EVENTS, 10);
      await waitFor(() => sent(old).some((e) => e.seq === EVENTS + 10), 30_000, 'the old epoch live to its end');
      const redis = await connectRedis(REDIS_URL);
      await deleteKeys(redis, `${RUN}:*`);
      redis.disconnect();
      await produce(EVENTS + 10, 100);
      const store = system.backends.store;
      const head = EVENTS + 110;
      await waitFor(async () => {
        const read = await store.readAfter(TOPIC, 0, 0);
        return read.headSeq === head && read.epoch !== old;
      }, 60_000, 'the topic re-projected under a new epoch, with the new events');
      const { epoch } = await store.readAfter(TOPIC, 0, 0);
      await waitFor(() => sent(epoch).some((e) => e.seq === head), 30_000, 'the new epoch live');

      // The old epoch, by name: every delta it served up to its last checkpoint; what came after that is
      // recorded nowhere durable, and said so.
      const then = await overHttp(`/api/v1/replay?topic=${TOPIC}&epoch=${old}&from_seq=1&to_seq=${EVENTS + 10}`);
      expect(then.status).toBe(200);
      expect(envelopes(then.body).lines).toEqual([...deltas, ...sent(old)].filter((e) => (e.seq as number) <= EVENTS));
      expect(envelopes(then.body).end).toMatchObject({ epoch: old, count: EVENTS, missing: [{ from_seq: EVENTS + 1, to_seq: EVENTS + 10, reason: 'beyond_head' }] });
      const out = join(dir, 'old-epoch.ndjson');
      const run = runBondx(['replay', TOPIC, '--epoch', old, '--from-seq', '1', '--to-seq', String(EVENTS + 10), '--out', out], { ...ENV, LOG_LEVEL: 'silent' });
      expect(await run.exited(30_000), run.stderr()).toBe(0);
      expect(readFileSync(out, 'utf8')).toBe(then.body);

      // The new epoch: the topic's current history, mostly rebuilt, holds what the watcher was sent under it.
      const now = envelopes((await overHttp(`/api/v1/replay?topic=${TOPIC}&from_seq=1&to_seq=${head}`)).body).lines;
      expect(now.map((l) => l.meta.epoch)).toEqual(Array(head).fill(epoch));
      const bySeq = new Map(now.map((l) => [l.seq, l]));
      expect(sent(epoch).length).toBeGreaterThanOrEqual(100);
      for (const envelope of sent(epoch)) expect(bySeq.get(envelope.seq)).toEqual(envelope);
      // Same seqs, commit times and payloads as under the old epoch: only epoch and hash differ.
      const gist = ({ seq, ts, payload, correlation_id }: Envelope) => ({ seq, ts, payload, correlation_id });
      expect(now.slice(0, EVENTS).map(gist)).toEqual(deltas.map(gist));
    } finally {
      watcher.close();
    }
  }, 150_000);
});
