import { randomBytes } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Ingest } from '../../src/ingest/ingest.js';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { ProjectorConsumer } from '../../src/ingest/kafka/projector-consumer.js';
import { kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { Projector } from '../../src/projector/projector.js';
import { createBackends } from '../../src/runtime/system.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { quote } from '../support/events.js';
import { connectRedis, deleteKeys, dropRun, serviceUrl } from '../support/services.js';
import { waitFor } from '../support/waits.js';

/**
 * Commit time comes from the Kafka record, so projecting the same records again — into a wiped Redis,
 * by another projector group — gives every entry the same ts (and seq, event, payload) as the first time.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the commit time tests');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the commit time tests');
const RUN = `ct-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const configFor = (group: string) => loadConfig({ REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-${group}`, KAFKA_PARTITIONS: '1', LOG_LEVEL: 'silent' });

/** Record times; the third is earlier than the second (another producer's clock): its entry keeps the second's ts. */
const RECORD_MS = [Date.parse('2026-01-05T09:00:00.100Z'), Date.parse('2026-01-05T09:00:01.200Z'), Date.parse('2026-01-05T09:00:00.900Z'), Date.parse('2026-01-05T09:00:02.000Z')];
const EXPECTED_TS = ['2026-01-05T09:00:00.100Z', '2026-01-05T09:00:01.200Z', '2026-01-05T09:00:01.200Z', '2026-01-05T09:00:02.000Z'];

let kafka: Kafka;

beforeAll(async () => {
  kafka = createKafka(configFor('setup'), silentLogger, '-test');
  await ensureTopics(kafka, configFor('setup'));
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: kafkaTopic(RUN, 'market'),
    messages: RECORD_MS.map((ms, i) => ({ key: ISIN, value: JSON.stringify(quote(ISIN, 99 + i / 100, 99.5 + i / 100)), timestamp: String(ms) })),
  });
  await producer.disconnect();
});

afterAll(async () => {
  await dropRun(kafka, REDIS_URL, RUN);
});

/** Projects the market topic from the beginning with a fresh consumer group; resolves with the topic's history. */
async function project(group: string): Promise<HistoryEntry[]> {
  const config = configFor(group);
  const backends = await createBackends(config, silentLogger);
  const projector = new Projector(backends.store, silentLogger);
  const consumer = new ProjectorConsumer(createKafka(config, silentLogger, '-projector'), config, new Ingest(projector, backends.deadLetters, silentLogger, new Metrics()), projector, backends.store, silentLogger);
  await consumer.start();
  try {
    let entries: HistoryEntry[] = [];
    await waitFor(async () => (entries = (await backends.store.readAfter(TOPIC, 0, 100)).entries).length === RECORD_MS.length, 20_000, 'every record projected');
    return entries;
  } finally {
    await consumer.stop();
    await backends.close();
  }
}

describe('commit time from the Kafka record', () => {
  it('entries carry the record timestamps (ts-ordered), and a re-projection into a wiped store reproduces them', async () => {
    const first = await project('a');
    expect(first.map((e) => e.ts)).toEqual(EXPECTED_TS);

    const redis = await connectRedis(REDIS_URL);
    await deleteKeys(redis, `${RUN}:*`);
    redis.disconnect();
    const again = await project('b');
    // A new epoch (the topic was created afresh), so another hash chain (the epoch is hashed); everything else identical.
    const withoutEpoch = (entries: HistoryEntry[]) => entries.map(({ epoch: _epoch, hash: _hash, ...rest }) => rest);
    expect(withoutEpoch(again)).toEqual(withoutEpoch(first));
  });

  it('a projector of a group that consumed the records before rebuilds a wiped store from the start of the partition, not from the group offset', async () => {
    const before = await project('c');
    // The group committed past every record (whether or not its consumer got to commit before it stopped).
    const admin = kafka.admin();
    await admin.connect();
    await admin.setOffsets({ groupId: `${RUN}-c`, topic: kafkaTopic(RUN, 'market'), partitions: [{ partition: 0, offset: String(RECORD_MS.length) }] });
    await admin.disconnect();
    const redis = await connectRedis(REDIS_URL);
    await deleteKeys(redis, `${RUN}:*`);
    redis.disconnect();
    const withoutEpoch = (entries: HistoryEntry[]) => entries.map(({ epoch: _epoch, hash: _hash, ...rest }) => rest);
    expect(withoutEpoch(await project('c'))).toEqual(withoutEpoch(before));
  }, 60_000);
});
