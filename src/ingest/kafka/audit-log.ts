import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import { toSignedCheckpoint } from '../../store/checkpoint.js';
import type { SignedCheckpoint } from '../../store/topic-store.js';
import { createProducer } from './kafka-client.js';

/**
 * The Kafka audit topic (`{KAFKA_TOPIC_PREFIX}.audit`, created by ensureTopics with retention.ms=-1): signed
 * checkpoints keyed by topic, one JSON record each. Written by the projector's checkpointer, read whole by
 * `bondx audit verify`.
 */
export class KafkaCheckpointLog {
  private readonly producer: Producer;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
  ) {
    // Idempotent: a retried send does not write a checkpoint twice.
    this.producer = createProducer(kafka, true);
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  async append(checkpoints: SignedCheckpoint[]): Promise<void> {
    if (checkpoints.length === 0) return;
    await this.producer.send({ topic: this.topic, acks: -1, messages: checkpoints.map((cp) => ({ key: cp.topic, value: JSON.stringify(cp) })) });
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}

/** Every checkpoint of the given topics in the audit topic, up to its end when called, in append order. */
export async function readKafkaCheckpoints(kafka: Kafka, auditTopic: string, topics: ReadonlySet<string>): Promise<Map<string, SignedCheckpoint[]>> {
  const out = new Map<string, SignedCheckpoint[]>([...topics].map((t) => [t, []]));
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(auditTopic).finally(() => admin.disconnect());
  const pending = new Map(ends.filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => [p.partition, BigInt(p.high)]));
  if (pending.size === 0) return out;
  // A group of its own that commits nothing: reading the log must not move anyone else's position.
  const consumer = kafka.consumer({ groupId: `bondx-audit-verify-${randomUUID()}`, allowAutoTopicCreation: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [auditTopic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            const checkpoint = toSignedCheckpoint(JSON.parse(message.value?.toString('utf8') ?? 'null') as unknown);
            out.get(checkpoint.topic)?.push(checkpoint);
            const end = pending.get(partition);
            if (end !== undefined && BigInt(message.offset) + 1n >= end) pending.delete(partition);
            if (pending.size === 0) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
