import type { Producer } from 'kafkajs';
import type { DeadLetter, DeadLetterStore } from '../dead-letter.js';

/**
 * Dead letters in Kafka mode: each goes to the `{prefix}.dlq` topic (with the reason in a header, for
 * upstream teams to consume) and to the queryable store behind it (for the endpoint and CLI).
 */
export class KafkaDeadLetterStore implements DeadLetterStore {
  constructor(
    private readonly producer: Producer,
    private readonly dlqTopic: string,
    private readonly store: DeadLetterStore,
  ) {}

  async add(letter: DeadLetter): Promise<void> {
    const value = typeof letter.event === 'string' ? letter.event : JSON.stringify(letter.event);
    await this.producer.send({
      topic: this.dlqTopic,
      acks: -1,
      messages: [{ value, headers: { reason: letter.reason, source: letter.source, at: letter.at } }],
    });
    await this.store.add(letter);
  }

  list(limit: number): Promise<DeadLetter[]> {
    return this.store.list(limit);
  }

  count(): Promise<number> {
    return this.store.count();
  }
}
