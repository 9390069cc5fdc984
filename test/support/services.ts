import type { Kafka } from 'kafkajs';
import { Redis } from 'ioredis';

/**
 * Access to the real services integration tests run against. Never a skip: a missing service fails
 * the file with how to provide it (`npm test` starts Redis and Kafka and sets these variables).
 */
const HOW = 'run `npm test`, or `bash scripts/services.sh up` and eval "$(bash scripts/services.sh env)"';

export function serviceUrl(name: 'REDIS_URL' | 'KAFKA_BROKERS', purpose: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: ${purpose} need a real ${name === 'REDIS_URL' ? 'Redis' : 'Kafka broker'} (${HOW})`);
  return value;
}

/** A Redis connection that is known to answer (else a clear error naming the URL). */
export async function connectRedis(url: string): Promise<Redis> {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 3000 });
  try {
    await redis.ping();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at REDIS_URL=${url}: ${String(error)}`);
  }
  return redis;
}

/** Deletes every key matching `pattern` (SCAN + UNLINK), so test files can share one Redis. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/** Deletes a test run's Kafka topics (`<prefix>.*`) and Redis keys (`<prefix>:*`). */
export async function dropRun(kafka: Kafka, redisUrl: string, prefix: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`)) });
  await admin.disconnect();
  const redis = await connectRedis(redisUrl);
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
}
