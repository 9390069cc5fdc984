/** A Kafka client's connectivity as health reports it: up or down since when, and why. */
export interface KafkaClientStatus {
  status: 'up' | 'down';
  /** ISO time `status` last changed (a new `detail` with the same status keeps it). */
  since: string;
  detail?: string;
}

/** Tracks one client's status from its instrumentation events (kafkajs `consumer.events` / `producer.events`). */
export class ConnectionState {
  private current: KafkaClientStatus;

  constructor(detail = 'not connected') {
    this.current = { status: 'down', since: new Date().toISOString(), detail };
  }

  set(status: 'up' | 'down', detail?: string): void {
    const since = status === this.current.status ? this.current.since : new Date().toISOString();
    this.current = { status, since, ...(detail !== undefined ? { detail } : {}) };
  }

  get(): KafkaClientStatus {
    return { ...this.current };
  }
}
