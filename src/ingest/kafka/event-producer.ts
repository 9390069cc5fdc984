import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import type { DomainEvent } from '../../domain/events.js';
import { ConnectionState, type KafkaClientStatus } from './connection-state.js';
import { createProducer } from './kafka-client.js';
import { kafkaTopic, routeEvent } from './routing.js';

/**
 * Publishes upstream events to their Kafka topics, keyed by entity. Used by `bondx produce`, the
 * benchmark and tests; upstream teams do the same with any Kafka client.
 */
export class EventProducer {
  private readonly producer: Producer;
  /** Connectivity for health, from the producer's instrumentation events. */
  private readonly state = new ConnectionState();

  constructor(
    kafka: Kafka,
    private readonly prefix: string,
  ) {
    // Idempotent producer: a retried send is not written twice.
    this.producer = createProducer(kafka, true);
    this.producer.on(this.producer.events.CONNECT, () => this.state.set('up', 'connected'));
    this.producer.on(this.producer.events.DISCONNECT, () => this.state.set('down', 'disconnected'));
  }

  /** Whether the producer is connected, as its last instrumentation event said. */
  status(): KafkaClientStatus {
    return this.state.get();
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** Sends events in order; events of one entity keep their relative order. */
  async send(events: DomainEvent[]): Promise<void> {
    const byTopic = new Map<string, { key: string; value: string }[]>();
    for (const event of events) {
      const { family, key } = routeEvent(event);
      const topic = kafkaTopic(this.prefix, family);
      let messages = byTopic.get(topic);
      if (!messages) byTopic.set(topic, (messages = []));
      messages.push({ key, value: JSON.stringify(event) });
    }
    await this.producer.sendBatch({ acks: -1, compression: CompressionTypes.None, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
  }

  /** Sends raw values as-is (e.g. lines that are not valid events, which the projector dead-letters). */
  async sendRaw(family: 'market' | 'auctions' | 'trading' | 'risk', values: { key?: string; value: string }[]): Promise<void> {
    await this.producer.send({ topic: kafkaTopic(this.prefix, family), acks: -1, messages: values.map((v) => ({ key: v.key ?? null, value: v.value })) });
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }
}
