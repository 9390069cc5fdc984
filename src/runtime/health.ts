import type { KafkaClientStatus } from '../ingest/kafka/connection-state.js';
import type { HealthCheck } from '../observability/health.js';

/** What a process reads for its health at one instant (system.ts gathers it from its running parts). */
export interface HealthReadings {
  /** The backends' check: `redis` (`off` in memory). */
  redis: HealthCheck;
  /** This process's Kafka clients; absent without KAFKA_BROKERS. */
  kafka?: {
    producer: KafkaClientStatus;
    /** The projector's consumer and its lag; absent without the projector role. */
    consumer?: { status: KafkaClientStatus; lag: number };
  };
  /** The alert monitor's check. */
  alerts: HealthCheck;
  /** Shutting down: no new clients. */
  draining: boolean;
}

/**
 * Every named check of a process, always the same names in the same order, so a machine can read any
 * of them (`off` where it does not apply). The one place health is built from; observability/health.ts
 * `assessHealth` combines the list.
 */
export function healthChecks(r: HealthReadings): HealthCheck[] {
  const noKafka = 'KAFKA_BROKERS not set';
  const consumer = r.kafka?.consumer;
  return [
    r.redis,
    r.kafka ? kafkaCheck('kafka_producer', r.kafka.producer) : { name: 'kafka_producer', status: 'off', detail: noKafka },
    consumer ? kafkaCheck('kafka_consumer', consumer.status) : { name: 'kafka_consumer', status: 'off', detail: r.kafka ? 'no projector role' : noKafka },
    consumer ? { name: 'projector_lag', status: 'up', detail: `${consumer.lag} messages` } : { name: 'projector_lag', status: 'off' },
    r.alerts,
    r.draining ? { name: 'draining', status: 'unready', detail: 'shutting down' } : { name: 'draining', status: 'up' },
  ];
}

function kafkaCheck(name: string, client: KafkaClientStatus): HealthCheck {
  return { name, status: client.status, since: client.since, ...(client.detail !== undefined ? { detail: client.detail } : {}) };
}
