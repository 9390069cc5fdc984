import { Kafka, logLevel, Partitioners, type ITopicConfig, type LogEntry, type Producer } from 'kafkajs';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import { checkpointsTopic } from './checkpoints.js';
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

/**
 * Creates the event topics, the DLQ, the audit topic and the delivery record when missing (idempotent).
 * The audit topic keeps its checkpoints forever (retention.ms=-1) on one partition: a few records per
 * topic per minute, read back whole by `bondx audit verify`. The delivery record is kept forever too,
 * keyed by user over KAFKA_PARTITIONS partitions: a user's question reads one partition.
 */
export async function ensureTopics(kafka: Kafka, config: Config): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const wanted: ITopicConfig[] = [
      // The domain topics are the audit trail replays rebuild from (README "Audit and replay"): KAFKA_RETENTION_MS, default forever.
      ...FAMILIES.map((f) => ({ topic: kafkaTopic(config.KAFKA_TOPIC_PREFIX, f), numPartitions: config.KAFKA_PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: String(config.KAFKA_RETENTION_MS) }] })),
      { topic: kafkaTopic(config.KAFKA_TOPIC_PREFIX, 'dlq'), numPartitions: config.KAFKA_PARTITIONS, replicationFactor: 1 },
      { topic: checkpointsTopic(config.KAFKA_TOPIC_PREFIX), numPartitions: config.KAFKA_PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] },
      { topic: kafkaTopic(config.KAFKA_TOPIC_PREFIX, 'audit'), numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] },
      { topic: kafkaTopic(config.KAFKA_TOPIC_PREFIX, 'deliveries'), numPartitions: config.KAFKA_PARTITIONS, replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: '-1' }] },
    ].filter((t) => !existing.has(t.topic));
    if (wanted.length > 0) await admin.createTopics({ waitForLeaders: true, topics: wanted });
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
