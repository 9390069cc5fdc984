import type { Kafka, Producer } from 'kafkajs';
import type { DeliveryLog, DeliveryRecord } from '../../store/deliveries.js';
import { createProducer } from './kafka-client.js';
import { partitionCount, readPartition } from './partition-reader.js';
import { kafkaTopic, partitionOf } from './routing.js';

/**
 * The delivery record in Kafka (`{KAFKA_TOPIC_PREFIX}.deliveries`, created by ensureTopics, kept forever):
 * one JSON record per range write, keyed by user, so one partition holds all of a user's ranges in
 * order. Gateways append; a user's question reads that partition to its end (with a group of its own
 * that commits nothing).
 */
export class KafkaDeliveryLog implements DeliveryLog {
  private readonly producer: Producer;
  private connected: Promise<void> | undefined;

  constructor(
    private readonly kafka: Kafka,
    prefix: string,
    /** Group id prefix of the readers' own consumers. */
    private readonly groupPrefix: string,
  ) {
    this.topic = kafkaTopic(prefix, 'deliveries');
    // Not idempotent: a record written twice is the same range state twice, which reading collapses.
    this.producer = createProducer(kafka, false);
  }

  readonly topic: string;

  async append(records: readonly DeliveryRecord[]): Promise<void> {
    if (records.length === 0) return;
    this.connected ??= this.producer.connect();
    await this.connected;
    await this.producer.send({ topic: this.topic, acks: -1, messages: records.map((r) => ({ key: r.user, value: JSON.stringify(r) })) });
  }

  async read(user: string): Promise<DeliveryRecord[]> {
    const partitions = await partitionCount(this.kafka, this.topic);
    if (partitions === 0) return [];
    const out: DeliveryRecord[] = [];
    for await (const batch of readPartition(this.kafka, this.groupPrefix, this.topic, partitionOf(user, partitions))) {
      for (const record of batch) {
        if (record.key?.toString('utf8') !== user || !record.value) continue;
        out.push(JSON.parse(record.value.toString('utf8')) as DeliveryRecord);
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
