import type { Kafka, Producer } from 'kafkajs';
import { groupRecords, type DeliveryLog, type DeliveryRecord } from '../../store/deliveries.js';
import { createProducer } from './kafka-client.js';
import { partitionCount, readPartition } from './partition-reader.js';
import { kafkaTopic, partitionOf } from './routing.js';

/**
 * Ranges per Kafka record: one record per range would cost the gateway a Kafka message each (kafkajs'
 * per-message work dominates), so a flush writes a few records per partition. ~400 bytes a range keeps
 * a record well under the broker's 1 MB default.
 */
const RANGES_PER_RECORD = 1000;
/** Kafka records per produce request (~400 KB each at most). */
const RECORDS_PER_REQUEST = 4;

/**
 * The delivery record in Kafka (`{KAFKA_TOPIC_PREFIX}.deliveries`, created by ensureTopics, kept forever).
 * Each user's ranges go to the partition their user id hashes to (the producer's partitioner, as for a
 * key), so one partition holds all of a user's ranges in order; a Kafka record is a JSON array of the
 * ranges one flush wrote to that partition (several users), keyed by its first range's user. Gateways
 * append; a user's question reads that partition to its end (with a group of its own that commits nothing).
 */
export class KafkaDeliveryLog implements DeliveryLog {
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;
  private partitions: Promise<number> | undefined;
  readonly topic: string;

  constructor(
    private readonly kafka: Kafka,
    prefix: string,
    /** Group id prefix of the readers' own consumers. */
    private readonly groupPrefix: string,
  ) {
    this.topic = kafkaTopic(prefix, 'deliveries');
    // Not idempotent: a record written twice holds the same range states twice, which reading collapses.
    this.producer = createProducer(kafka, false);
  }

  async append(records: readonly DeliveryRecord[]): Promise<void> {
    if (records.length === 0) return;
    this.connected ??= this.producer.connect();
    this.partitions ??= partitionCount(this.kafka, this.topic);
    const [, partitions] = await Promise.all([this.connected, this.partitions]);
    if (partitions === 0) throw new Error(`Kafka topic ${this.topic} does not exist (ensureTopics creates it)`);
    const messages = [...groupRecords(records, (r) => partitionOf(r.user, partitions))].flatMap(([p, list]) =>
      Array.from({ length: Math.ceil(list.length / RANGES_PER_RECORD) }, (_, i) => {
        const chunk = list.slice(i * RANGES_PER_RECORD, (i + 1) * RANGES_PER_RECORD);
        return { partition: p, key: (chunk[0] as DeliveryRecord).user, value: JSON.stringify(chunk) };
      }),
    );
    // A few records per request: kafkajs copies a request's whole buffer as it grows, so one huge request costs more than its parts.
    for (let i = 0; i < messages.length; i += RECORDS_PER_REQUEST) await this.producer.send({ topic: this.topic, acks: -1, messages: messages.slice(i, i + RECORDS_PER_REQUEST) });
  }

  async read(user: string): Promise<DeliveryRecord[]> {
    const partitions = await partitionCount(this.kafka, this.topic);
    if (partitions === 0) return [];
    const out: DeliveryRecord[] = [];
    for await (const batch of readPartition(this.kafka, this.groupPrefix, this.topic, partitionOf(user, partitions))) {
      for (const record of batch) {
        if (!record.value) continue;
        for (const range of JSON.parse(record.value.toString('utf8')) as DeliveryRecord[]) if (range.user === user) out.push(range);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.connected === undefined) return;
    await this.connected;
    await this.producer.disconnect();
  }
}
