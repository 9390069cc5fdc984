import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { DomainEvent } from '../../src/domain/events.js';
import { validateEvent } from '../../src/ingest/validate.js';
import { Ingest } from '../../src/ingest/ingest.js';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { ProjectorConsumer } from '../../src/ingest/kafka/projector-consumer.js';
import { checkpointsTopic, readCheckpoints } from '../../src/ingest/kafka/checkpoints.js';
import { FAMILIES, kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { Projector } from '../../src/projector/projector.js';
import { applyDelta, freshPrices, type DeltaPayload, type StateOf } from '../../src/domain/deltas/index.js';
import type { JsonObject } from '../../src/domain/json.js';
import { replayLine } from '../../src/gateway/envelope.js';
import { historyFor, KafkaHistory, StitchedHistory } from '../../src/replay/kafka-history.js';
import { planReplay, replayEncoder, runReplay, type HistoryReader } from '../../src/replay/replay.js';
import { parseReplayRequest } from '../../src/replay/request.js';
import { stateAt } from '../../src/replay/state.js';
import type { Backends } from '../../src/runtime/backends.js';
import { createBackends } from '../../src/runtime/system.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { book, ladder, quote } from '../support/events.js';
import { connectRedis, deleteKeys, dropRun, serviceUrl } from '../support/services.js';
import { waitFor } from '../support/waits.js';

function validated(raw: unknown): DomainEvent {
  const result = validateEvent(raw);
  if (!result.ok) throw new Error(result.reason);
  return result.event;
}

/**
 * Rebuild from Kafka (README "Audit and replay"): a topic projected into a Redis that keeps 100 entries,
 * every entry recorded from the live feed as it was committed; the history rebuilt from the topic's
 * partition (from checkpoints or its start) is those entries exactly — seq, ts, payload, event_id,
 * epoch and hash — and stitched to what Redis holds without a gap or duplicate.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay rebuild tests');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the replay rebuild tests');
const RUN = `rb-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const OTHER = 'IN0020230093';
const TOPIC = `prices.${ISIN}`;
const EVENTS = 600;
const EVERY = 150;
const ENV = { REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-p`, KAFKA_PARTITIONS: '3', HISTORY_MAX_LEN: '100', REPLAY_CHECKPOINT_EVERY: String(EVERY), LOG_LEVEL: 'silent' };
const config = loadConfig(ENV);

let kafka: Kafka;
let backends: Backends;
let consumer: ProjectorConsumer;
const recorded: HistoryEntry[] = [];
const kafkaHistory = () => new KafkaHistory({ kafka, prefix: RUN, groupPrefix: `${RUN}-replay` });

beforeAll(async () => {
  kafka = createKafka(config, silentLogger, '-test');
  await ensureTopics(kafka, config);
  backends = await createBackends(config, silentLogger);
  backends.live.subscribe(TOPIC, (entry) => recorded.push(entry));
  const projector = new Projector(backends.store, silentLogger);
  consumer = new ProjectorConsumer(createKafka(config, silentLogger, '-projector'), config, new Ingest(projector, backends.deadLetters, silentLogger, new Metrics()), projector, backends.store, silentLogger);
  await consumer.start();
  const producer = kafka.producer();
  await producer.connect();
  // The topic's events (quotes and books), another entity's on whatever partition it maps to, a record that
  // is not JSON and a redelivered event id: the rebuild must skip exactly what the projector skipped.
  const messages = Array.from({ length: EVENTS }, (_, i) => {
    const event = i % 3 === 0 ? book(ISIN, i % 2 === 0 ? 'bid' : 'ask', ladder(i % 2 === 0 ? 'bid' : 'ask', 3, i)) : quote(ISIN, 99 + (i % 50) / 100, 99.6 + (i % 50) / 100);
    return [{ key: ISIN, value: JSON.stringify(event) }, { key: OTHER, value: JSON.stringify(quote(OTHER)) }, ...(i === 10 ? [{ key: ISIN, value: '{not json' }, { key: ISIN, value: JSON.stringify(event) }] : [])];
  }).flat();
  for (let i = 0; i < messages.length; i += 200) await producer.send({ topic: kafkaTopic(RUN, 'market'), messages: messages.slice(i, i + 200) });
  await producer.disconnect();
  await waitFor(async () => (await backends.store.readAfter(TOPIC, 0, 0)).headSeq === EVENTS && recorded.length === EVENTS, 30_000, 'every event projected and seen live');
}, 60_000);

afterAll(async () => {
  await consumer?.stop();
  await backends?.close();
  await dropRun(kafka, REDIS_URL, RUN);
});

/** Every entry the reader gives, page by page as a replay reads them. */
async function readAll(reader: HistoryReader, from = 1, page = 64): Promise<HistoryEntry[]> {
  const out: HistoryEntry[] = [];
  for (let after = from - 1; ; ) {
    const { entries } = await reader.readAfter(TOPIC, after, page);
    if (entries.length === 0) return out;
    out.push(...entries);
    after = (entries.at(-1) as HistoryEntry).seq;
  }
}

describe('replay rebuilt from Kafka', () => {
  it('Redis keeps only the newest entries', async () => {
    const { firstSeq } = await backends.store.readAfter(TOPIC, 0, 0);
    expect(firstSeq).toBeGreaterThan(EVENTS - 200);
  });

  it('ensureTopics keeps the domain topics and the checkpoints forever (retention.ms=-1, KAFKA_RETENTION_MS)', async () => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const names = [...FAMILIES.map((f) => kafkaTopic(RUN, f)), checkpointsTopic(RUN)];
      const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['retention.ms'] })) });
      expect(Object.fromEntries(resources.map((r) => [r.resourceName, r.configEntries.find((e) => e.configName === 'retention.ms')?.configValue]))).toEqual(Object.fromEntries(names.map((n) => [n, '-1'])));
    } finally {
      await admin.disconnect();
    }
  });

  it('checkpoints every REPLAY_CHECKPOINT_EVERY entries, with the head and state the store had', async () => {
    const checkpoints = await readCheckpoints(kafka, RUN, `${RUN}-ck`, TOPIC);
    expect(checkpoints.map((c) => c.seq)).toEqual([150, 300, 450, 600]);
    const at600 = checkpoints.at(-1);
    const snapshot = await backends.store.snapshot(TOPIC);
    expect(at600).toMatchObject({ topic: TOPIC, epoch: snapshot?.epoch, seq: 600, ts: recorded.at(-1)?.ts, hash: recorded.at(-1)?.hash, state: snapshot?.state });
  });

  it('auto: Kafka before what Redis holds, Redis after, equal to the live entries (seq, ts, payload, event_id, epoch, hash)', async () => {
    const reader = new StitchedHistory(backends.store, kafkaHistory(), 'auto');
    try {
      expect(await readAll(reader)).toEqual(recorded);
    } finally {
      await reader.close();
    }
  });

  it('kafka: every entry rebuilt, from the nearest checkpoint for a range in the middle', async () => {
    const reader = new StitchedHistory(backends.store, kafkaHistory(), 'kafka');
    try {
      expect(await readAll(reader)).toEqual(recorded);
      expect(await readAll(reader, 451)).toEqual(recorded.slice(450));
      const [entry] = (await reader.readAfter(TOPIC, 301, 1)).entries;
      expect(entry).toEqual(recorded[301]);
    } finally {
      await reader.close();
    }
  });

  it('state at an instant: before the first entry, on and between entries (rebuilt), after the last (the snapshot)', async () => {
    // The states a client folding the recorded deltas holds after each seq (index 0: before the first).
    const states: JsonObject[] = [{}];
    let folded = freshPrices(ISIN) as StateOf<DeltaPayload>;
    for (const entry of recorded) states.push((folded = applyDelta(folded, entry.payload as DeltaPayload)) as JsonObject);
    const ms = (i: number) => Date.parse((recorded[i] as HistoryEntry).ts);
    const iso = (t: number) => new Date(t).toISOString();
    const gap = recorded.findIndex((_, i) => i > 0 && ms(i) - ms(i - 1) > 1);
    const instants = [iso(ms(0) - 1), iso(ms(0)), iso(ms(EVERY - 1)), iso(ms(333)), iso(ms(gap) - 1), iso(ms(EVENTS - 1)), new Date().toISOString()];
    const options = { kafka, prefix: RUN, groupPrefix: `${RUN}-state` };
    for (const at of instants) {
      const expected = recorded.filter((e) => e.ts <= at).length;
      const started = performance.now();
      const snapshot = await stateAt(backends.store, options, TOPIC, at);
      expect(performance.now() - started).toBeLessThan(5000);
      expect({ at, seq: snapshot.seq, ts: snapshot.ts, state: snapshot.state }).toEqual({ at, seq: expected, ts: expected === 0 ? at : recorded[expected - 1]?.ts, state: states[expected] });
    }
  });

  it('auto, for a topic whose events never went through Kafka: what Redis holds, the older seqs reported trimmed', async () => {
    const topic = 'prices.IN0020240019';
    const projector = new Projector(backends.store, silentLogger);
    for (let i = 0; i < 150; i++) await projector.apply(validated(quote('IN0020240019', 99 + i / 1000, 99.6)));
    const { firstSeq, headSeq } = await backends.store.readAfter(topic, 0, 0);
    expect(firstSeq).toBeGreaterThan(1);
    const reader = new StitchedHistory(backends.store, kafkaHistory(), 'auto');
    try {
      const request = parseReplayRequest({ topic });
      const end = await runReplay(reader, await planReplay(reader, request), replayEncoder('ndjson', topic, replayLine), { write: async () => undefined });
      expect(end).toMatchObject({ from_seq: firstSeq, to_seq: headSeq, count: headSeq - firstSeq + 1, missing: [{ from_seq: 1, to_seq: firstSeq - 1, reason: 'trimmed' }] });
    } finally {
      await reader.close();
    }
  });

  it('after a wipe (the topic re-projected into an empty store: a new epoch), the old epoch replays by name, its entries exactly as served in it', async () => {
    // Another store fed from the same Kafka records, as a wiped Redis is re-projected: same seqs, ts and
    // payloads, a new epoch (and so other hashes); its projector writes that epoch's checkpoints too.
    const wiped = loadConfig({ ...ENV, REDIS_PREFIX: `${RUN}-wiped`, KAFKA_GROUP_ID: `${RUN}-p2` });
    const store = await createBackends(wiped, silentLogger);
    const projector = new Projector(store.store, silentLogger);
    const consumer2 = new ProjectorConsumer(createKafka(wiped, silentLogger, '-projector2'), wiped, new Ingest(projector, store.deadLetters, silentLogger, new Metrics()), projector, store.store, silentLogger);
    await consumer2.start();
    try {
      await waitFor(async () => (await store.store.readAfter(TOPIC, 0, 0)).headSeq === EVENTS, 30_000, 'the topic re-projected');
      await waitFor(async () => (await readCheckpoints(kafka, RUN, `${RUN}-ck2`, TOPIC)).filter((c) => c.seq === EVENTS).length === 2, 30_000, "the new epoch's checkpoints");
      const old = (recorded[0] as HistoryEntry).epoch;
      const options = { kafka, prefix: RUN, groupPrefix: `${RUN}-epoch` };
      const now = historyFor(store.store, options, 'auto');
      const then = historyFor(store.store, options, 'auto', old);
      try {
        const current = await readAll(now);
        expect(current[0]?.epoch).not.toBe(old);
        expect(current.map(({ seq, ts, payload, event_id }) => ({ seq, ts, payload, event_id }))).toEqual(recorded.map(({ seq, ts, payload, event_id }) => ({ seq, ts, payload, event_id })));
        // The old epoch: what was served under it, hash for hash (its checkpoints checked on the way).
        expect(await readAll(then)).toEqual(recorded);
        const lines: string[] = [];
        const request = parseReplayRequest({ topic: TOPIC, epoch: old, from_seq: '590', to_seq: '700' });
        const end = await runReplay(then, await planReplay(then, request), replayEncoder('ndjson', TOPIC, replayLine), { write: async (chunk) => void lines.push(chunk) });
        expect(end).toMatchObject({ epoch: old, from_seq: 590, to_seq: EVENTS, count: EVENTS - 589, head_seq: EVENTS, missing: [{ from_seq: EVENTS + 1, to_seq: 700, reason: 'beyond_head' }] });
        const unknown = historyFor(store.store, options, 'auto', 'ffffffffffff');
        await expect(unknown.readAfter(TOPIC, 0, 0)).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
        await unknown.close();
      } finally {
        await now.close();
        await then.close();
      }
    } finally {
      await consumer2.stop();
      await store.close();
      const redis = await connectRedis(REDIS_URL);
      await deleteKeys(redis, `${RUN}-wiped:*`);
      redis.disconnect();
    }
  }, 90_000);
});
