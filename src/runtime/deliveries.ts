import type { Config } from '../config/config.js';
import { createKafka } from '../ingest/kafka/kafka-client.js';
import { KafkaDeliveryLog } from '../ingest/kafka/delivery-log.js';
import type { Logger } from '../observability/logger.js';
import { MemoryDeliveryLog, type DeliveryLog } from '../store/deliveries.js';
import type { RedisClient } from '../store/redis/client.js';
import { RedisDeliveryLog } from '../store/redis/redis-deliveries.js';

/**
 * Where the delivery record is written and read: the Kafka topic `<prefix>.deliveries` with Kafka, else
 * the user's Redis stream with Redis (`redis`: the process's client), else this process's memory.
 */
export function deliveryLogFor(config: Config, log: Logger, redis: { client: RedisClient; prefix: string } | undefined): DeliveryLog {
  if (config.KAFKA_BROKERS) return new KafkaDeliveryLog(createKafka(config, log, '-deliveries'), config.KAFKA_TOPIC_PREFIX, `${config.KAFKA_GROUP_ID}.deliveries`);
  if (redis) return new RedisDeliveryLog(redis.client, redis.prefix, config.AUDIT_DELIVERIES_MAX_LEN);
  return new MemoryDeliveryLog(config.AUDIT_DELIVERIES_MAX_LEN);
}
