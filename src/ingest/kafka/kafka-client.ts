import { Kafka, logLevel, Partitioners, type LogEntry, type Producer } from 'kafkajs';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import { FAMILIES, kafkaTopic } from './routing.js';

/** A kafkajs client whose own logs go through our structured logger. */
export function createKafka(config: Config, log: Logger, clientSuffix = ''): Kafka {
  if (!config.KAFKA_BROKERS) throw new Error('KAFKA_BROKERS is not set');
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: `${config.KAFKA_CLIENT_ID}${clientSuffix}`,
    brokers: config.KAFKA_BROKERS.split(',').map((b) => b.trim()),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        if (level <= logLevel.ERROR) kafkaLog.error(rest, message);
        else if (level === logLevel.WARN) kafkaLog.warn(rest, message);
        else kafkaLog.debug(rest, message);
      },
    retry: { retries: 8, initialRetryTime: 200 },
  });
}

/** Creates the event topics and the DLQ when missing (idempotent). */
export async function ensureTopics(kafka: Kafka, config: Config): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted = [...FAMILIES, 'dlq' as const].map((f) => kafkaTopic(config.KAFKA_TOPIC_PREFIX, f)).filter((t) => !existing.has(t));
    if (wanted.length > 0) {
      await admin.createTopics({ waitForLeaders: true, topics: wanted.map((topic) => ({ topic, numPartitions: config.KAFKA_PARTITIONS, replicationFactor: 1 })) });
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * A producer with kafkajs' default (Java-compatible murmur2) partitioner chosen explicitly, so a key
 * lands on the partition any other Kafka client would pick. An idempotent producer retries without
 * limit (kafkajs' own default for it): giving up mid-sequence would void the no-duplicate guarantee.
 */
export function createProducer(kafka: Kafka, idempotent: boolean): Producer {
  return kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    ...(idempotent ? { idempotent: true, maxInFlightRequests: 1, retry: { retries: Number.MAX_SAFE_INTEGER } } : {}),
  });
}
