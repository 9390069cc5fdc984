import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { entityOf } from '../../src/domain/topics.js';
import { Ingest } from '../../src/ingest/ingest.js';
import { EventProducer } from '../../src/ingest/kafka/event-producer.js';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { ProjectorConsumer } from '../../src/ingest/kafka/projector-consumer.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { Projector } from '../../src/projector/projector.js';
import type { Backends } from '../../src/runtime/backends.js';
import { createBackends } from '../../src/runtime/system.js';
import { redisKeys } from '../../src/store/redis/keys.js';
import { quote } from '../support/events.js';
import { clusterSeeds, deleteKeys, serviceUrl } from '../support/services.js';
import { waitFor } from '../support/waits.js';

/**
 * On a Redis Cluster each shard loses its own suffix of writes (a replica promoted with what it had
 * replicated): two entities of one Kafka partition can come back at different points of it. Real Kafka,
 * the real 3 + 3 cluster, the projector consumer in process; the loss is a DUMP/RESTORE of each entity's
 * keys (topic meta and history, registry, offsets, dedup window) taken at two different moments. Whichever
 * entity is found first, both must be projected again with the same seqs and content: no epoch renewed,
 * no seq handed to another event, nothing skipped on the way back.
 */
const SEEDS = clusterSeeds('the shard loss test');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the shard loss test');
const RUN = `shard-${randomBytes(4).toString('hex')}`;
// REDIS_URL '' over the inherited one: the backends run on the cluster.
const config = loadConfig({ REDIS_URL: '', REDIS_CLUSTER_NODES: SEEDS, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '1', LOG_LEVEL: 'silent' });
const [A, B] = ['prices.IN0020230085', 'prices.IN0020240019'] as const;
const keys = redisKeys(RUN);
/** Every key of a topic's entity. */
const entityKeys = (topic: string) => [keys.meta(topic), keys.history(topic), keys.registry(entityOf(topic)), keys.offsets(entityOf(topic)), keys.dedup(entityOf(topic))];

let kafka: Kafka;
let producer: EventProducer;
let backends: Backends;
let consumer: ProjectorConsumer;
const upstream = new Map<string, string[]>([
  [A, []],
  [B, []],
]);

beforeAll(async () => {
  kafka = createKafka(config, silentLogger, '-test');
  await ensureTopics(kafka, config);
  producer = new EventProducer(kafka, RUN);
  await producer.connect();
  backends = await createBackends(config, silentLogger);
  await startProjector();
});

/** A projector process's worth: a fresh Projector (nothing remembered) and its Kafka consumer. */
async function startProjector(): Promise<void> {
  const projector = new Projector(backends.store, silentLogger);
  consumer = new ProjectorConsumer(createKafka(config, silentLogger, '-projector'), config, new Ingest(projector, backends.deadLetters, silentLogger, new Metrics()), projector, backends.store, silentLogger);
  await consumer.start();
}

afterAll(async () => {
  await consumer?.stop();
  await producer?.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: (await admin.listTopics()).filter((t) => t.startsWith(`${RUN}.`)) });
  await admin.disconnect();
  if (backends?.redis) await deleteKeys(backends.redis.client, `${RUN}:*`);
  await backends?.close();
});

/** `n` quotes of each topic's ISIN, alternating (or of `only`), into the one partition. */
async function send(n: number, only?: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (const topic of only ? [only] : [A, B]) {
      const event = quote(topic.slice('prices.'.length), 99 + Math.random(), 99.6);
      upstream.get(topic)?.push(event.event_id);
      await producer.send([event]);
    }
  }
}

const head = async (topic: string) => (await backends.store.snapshot(topic))?.seq ?? 0;
const projected = () => waitFor(async () => (await head(A)) === upstream.get(A)?.length && (await head(B)) === upstream.get(B)?.length, 20_000, 'the projection to catch up', 50);

const epochsNow = async () => [(await backends.store.snapshot(A))?.epoch, (await backends.store.snapshot(B))?.epoch];

/** Each topic's history is exactly what was produced for it, seq 1, 2, 3, …, in epochs that did not change. */
async function expectAsProduced(epochs: (string | undefined)[]): Promise<void> {
  for (const topic of [A, B]) {
    const read = await backends.store.readAfter(topic, 0, 1000);
    expect(read.entries.map((e) => e.event_id), topic).toEqual(upstream.get(topic));
    expect(read.entries.map((e) => e.seq), topic).toEqual(upstream.get(topic)?.map((_, i) => i + 1));
  }
  expect(await epochsNow()).toEqual(epochs);
}

async function dump(topic: string): Promise<[string, Buffer | null][]> {
  const client = backends.redis?.client;
  if (!client) throw new Error('no Redis');
  return Promise.all(entityKeys(topic).map(async (key) => [key, await client.dumpBuffer(key)] as [string, Buffer | null]));
}

async function restore(saved: [string, Buffer | null][]): Promise<void> {
  const client = backends.redis?.client;
  if (!client) throw new Error('no Redis');
  for (const [key, value] of saved) {
    if (value) await client.restore(key, 0, value, 'REPLACE');
    else await client.del(key);
  }
}

describe('entities of one partition whose shards lost different suffixes', () => {
  // Found first: the one that lost more (the re-read starts early enough for both), then the one that lost less
  // (the re-read starts after its offset, and the other, met on the way with less than it was told, goes back further).
  for (const [more, less] of [
    [A, B],
    [B, A],
  ] as const) {
    it(`are both projected again from where each was, ${more === A ? 'the one that lost more' : 'the one that lost less'} found first: same seqs, events, epochs`, async () => {
      await send(15);
      await projected();
      const lostMore = await dump(more);
      await send(10);
      await projected();
      const lostLess = await dump(less);
      await send(10);
      await projected();
      const epochs = await epochsNow();
      const [moreHead, lessHead] = [await head(more), await head(less)];

      await restore(lostMore);
      await restore(lostLess);
      expect([await head(more), await head(less)]).toEqual([moreHead - 20, lessHead - 10]);
      await send(1, A); // A's next event finds it first
      await send(5);
      await projected();

      await expectAsProduced(epochs);
    }, 60_000);
  }
});

/** The port of the master that holds a key's slot. */
async function masterOf(key: string): Promise<number | undefined> {
  const client = backends.redis?.client;
  if (!client) throw new Error('no Redis');
  const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
  const shards = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  return shards.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
}

/** A market record every projector refuses (not JSON): dead-lettered, its offset consumed by a skip. */
const deadLetters = () => backends.deadLetters.count();

describe('a shard that lost writes while no projector ran', () => {
  it('is projected again by the next projector: it resumes after the lowest of the masters\' highest offsets, not after the highest', async () => {
    // A and B live on different masters (their slots: CLUSTER KEYSLOT), so each shard's loss is its own.
    expect(await masterOf(keys.meta(A))).not.toBe(await masterOf(keys.meta(B)));
    await send(10);
    await projected();
    const before = await dump(A);
    await send(10);
    await projected();
    const epochs = await epochsNow();
    await consumer.stop();
    await restore(before); // A's shard comes back without its last 10 writes; B's shard is intact
    expect(await head(A)).toBe((upstream.get(A)?.length ?? 0) - 10);
    await startProjector();
    await send(5);
    await projected();
    await expectAsProduced(epochs);
  }, 90_000);

  it('re-reads records other entities hold without reducing them again or dead-lettering them twice', async () => {
    await send(3);
    await projected();
    const epochs = await epochsNow();
    const skipEntity = keys.offsets(`source:${RUN}.market/0`);
    // A shard loses a suffix of everything it holds: the skip entity's offsets too when it lives with A.
    const skipWithA = (await masterOf(skipEntity)) === (await masterOf(keys.meta(A)));
    const saved = [...(await dump(A)), ...(skipWithA ? [[skipEntity, await backends.redis?.client.dumpBuffer(skipEntity)] as [string, Buffer | null]] : [])];
    const letters = await deadLetters();
    // Between the saved point and the loss: an invalid record and a trade of B (refused as a duplicate trade_id if reduced again).
    await producer.sendRaw('market', [{ value: 'not json {' }]);
    const trade = { event_id: `t-${RUN}`, type: 'trade' as const, ts: new Date().toISOString(), isin: B.slice('prices.'.length), trade_id: `tr-${RUN}`, price: 99.55, size: 1_000_000 };
    upstream.get(B)?.push(trade.event_id);
    await producer.send([trade]);
    await send(3);
    await projected();
    await waitFor(async () => (await deadLetters()) === letters + 1, 10_000, 'the invalid record dead-lettered');
    await consumer.stop();
    await restore(saved);
    await startProjector();
    await send(2);
    await projected();
    await expectAsProduced(epochs);
    // Kept once, unless the shard that lost A's writes lost the skip that consumed it too.
    expect(await deadLetters()).toBe(letters + (skipWithA ? 2 : 1));
  }, 90_000);
});
