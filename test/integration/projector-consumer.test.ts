import { randomBytes } from 'node:crypto';
import type { Admin, Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Ingest } from '../../src/ingest/ingest.js';
import { EventProducer } from '../../src/ingest/kafka/event-producer.js';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { ProjectorConsumer } from '../../src/ingest/kafka/projector-consumer.js';
import { kafkaTopic, sourceStream } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { Projector } from '../../src/projector/projector.js';
import type { Backends } from '../../src/runtime/backends.js';
import { createBackends } from '../../src/runtime/system.js';
import type { SourcePosition } from '../../src/store/topic-store.js';
import { quote } from '../support/events.js';
import { waitFor } from '../support/waits.js';
import { dropRun, serviceUrl } from '../support/services.js';

/**
 * The projector consumer's resume, in process, against the real Kafka and Redis: after a restart it
 * must read each partition from the store's offset + 1, whatever Kafka's committed group offset says
 * (the store is the authority: it holds the offset atomically with the projection). Here the group's
 * committed offsets are moved to the end of the log while the projector is down, so a consumer that
 * trusted them, or seeked one off, visibly skips events or re-reads the stored one.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the projector consumer tests');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the projector consumer tests');
const RUN = `pc-${randomBytes(4).toString('hex')}`;
const config = loadConfig({ REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '2', LOG_LEVEL: 'silent' });
const MARKET = kafkaTopic(RUN, 'market');
/** Enough ISINs that both market partitions get events. */
const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020192905', 'IN0020220060'];

/** A projector (consumer + ingest over the Redis store) that records what it fetched and what it submitted. */
interface RunningProjector {
  backends: Backends;
  /** First offset of each batch fetched, per partition stream, in order. */
  fetched: Map<string, string[]>;
  /** Positions handed to the ingest path, in order. */
  submitted(): SourcePosition[];
  stop(): Promise<void>;
}

async function startProjector(): Promise<RunningProjector> {
  const backends = await createBackends(config, silentLogger);
  const projector = new Projector(backends.store, silentLogger);
  const ingest = new Ingest(projector, backends.deadLetters, silentLogger, new Metrics());
  const submitRun = vi.spyOn(ingest, 'submitRun');
  const fetched = new Map<string, string[]>();
  // The consumer is the projector's own; kafkajs' instrumentation events say where each batch began.
  const kafka: Kafka = createKafka(config, silentLogger, '-projector');
  const makeConsumer = kafka.consumer.bind(kafka);
  kafka.consumer = (consumerConfig: ConsumerConfig): Consumer => {
    const consumer = makeConsumer(consumerConfig);
    consumer.on(consumer.events.START_BATCH_PROCESS, ({ payload }) => {
      const stream = sourceStream(payload.topic, payload.partition);
      fetched.set(stream, [...(fetched.get(stream) ?? []), payload.firstOffset]);
    });
    return consumer;
  };
  const consumer = new ProjectorConsumer(kafka, config, ingest, projector, backends.store, silentLogger);
  await consumer.start();
  return {
    backends,
    fetched,
    submitted: () => submitRun.mock.calls.flatMap(([records]) => records.map((record) => record.position)),
    stop: async () => {
      await consumer.stop();
      await backends.close();
    },
  };
}

let kafka: Kafka;
let admin: Admin;
let producer: EventProducer;

beforeAll(async () => {
  kafka = createKafka(config, silentLogger, '-test');
  await ensureTopics(kafka, config);
  admin = kafka.admin();
  await admin.connect();
  producer = new EventProducer(kafka, RUN);
  await producer.connect();
});

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  await dropRun(kafka, REDIS_URL, RUN);
});

/** Log end offset (next offset to be written) per market partition stream. */
async function logEnds(): Promise<Map<string, bigint>> {
  return new Map((await admin.fetchTopicOffsets(MARKET)).map((p) => [sourceStream(MARKET, p.partition), BigInt(p.high)]));
}

/** Waits until the store has applied every market message written so far; resolves with its offsets. */
async function appliedAll(running: RunningProjector): Promise<Map<string, bigint>> {
  const ends = await logEnds();
  const stored = new Map<string, bigint>();
  await waitFor(
    async () => {
      for (const [stream, end] of ends) {
        const offset = (await running.backends.store.sourceOffsets([stream])).get(stream) ?? null;
        if (offset === null || BigInt(offset) !== end - 1n) return false;
        stored.set(stream, BigInt(offset));
      }
      return true;
    },
    20_000,
    'the projector to apply every market message',
  );
  return stored;
}

const sendQuotes = (perIsin: number) => producer.sendRaw('market', ISINS.flatMap((isin) => Array.from({ length: perIsin }, () => ({ key: isin, value: JSON.stringify(quote(isin)) }))));

describe('projector consumer resume', () => {
  it('after a restart reads every partition from the stored offset + 1, whatever Kafka committed', async () => {
    // Each partition's last applied message is one the projector dead-lettered (not JSON): the stored
    // offset then names a message that must not be taken again (a second dead letter would show it).
    await sendQuotes(3);
    await producer.sendRaw('market', ISINS.map((isin) => ({ key: isin, value: `not json ${RUN} ${isin}` })));
    const first = await startProjector();
    const stored = await appliedAll(first);
    expect(stored.size).toBe(2); // both partitions hold events
    const deadLetters = await first.backends.deadLetters.count();
    expect(deadLetters).toBe(ISINS.length);
    await first.stop();

    // While it is down: more events, and the group's committed offsets moved past all of them.
    await sendQuotes(2);
    const ends = await logEnds();
    await admin.setOffsets({ groupId: config.KAFKA_GROUP_ID, topic: MARKET, partitions: [...ends].map(([stream, end]) => ({ partition: Number(stream.split('/')[1]), offset: end.toString() })) });

    const second = await startProjector();
    try {
      const after = await appliedAll(second);
      for (const [stream, offset] of stored) {
        const end = ends.get(stream) as bigint;
        expect(after.get(stream)).toBe(end - 1n);
        // Its first read of the partition starts right after the stored offset: not at it, not beyond.
        expect(second.fetched.get(stream)?.[0], `first fetch on ${stream}`).toBe((offset + 1n).toString());
        // Every later message went through ingest exactly once, in order; none at or below the stored offset.
        const offsets = second.submitted().filter((p) => p.stream === stream).map((p) => BigInt(p.offset));
        expect(offsets).toEqual(Array.from({ length: Number(end - offset - 1n) }, (_, i) => offset + 1n + BigInt(i)));
      }
      expect(await second.backends.deadLetters.count()).toBe(deadLetters);
      // Every quote is in the history of its topic exactly once: 3 before the restart, 2 after.
      for (const isin of ISINS) {
        const read = await second.backends.store.readAfter(`prices.${isin}`, 0, 100);
        expect(read.entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(new Set(read.entries.map((e) => e.event_id)).size).toBe(5);
      }
    } finally {
      await second.stop();
    }
  });
});
