import type { Kafka } from 'kafkajs';
import { Cluster, Redis } from 'ioredis';
import { clusterNodes, scanKeys, type RedisClient } from '../../src/store/redis/client.js';

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

/** Deletes every key matching `pattern` (SCAN + UNLINK; on a cluster, on every master), so test files can share one Redis. */
export async function deleteKeys(redis: RedisClient, pattern: string): Promise<void> {
  // One UNLINK per key: on a cluster the keys of one SCAN page are in many slots.
  for await (const { keys } of scanKeys(redis, pattern)) await Promise.all(keys.map((key) => redis.unlink(key)));
}

/**
 * The test Redis Cluster's seed nodes (BONDX_TEST_REDIS_CLUSTER_NODES: not REDIS_CLUSTER_NODES, which the
 * suite's spawned roles would inherit); never a skip.
 */
export function clusterSeeds(purpose: string): string {
  const nodes = process.env.BONDX_TEST_REDIS_CLUSTER_NODES;
  if (!nodes) throw new Error(`BONDX_TEST_REDIS_CLUSTER_NODES is not set: ${purpose} need the Redis Cluster (run \`npm test\`, which starts it, or \`bash scripts/services.sh up\` and set it from \`bash scripts/services.sh env\`)`);
  return nodes;
}

/** A Redis Cluster connection whose slots are known (else a clear error naming the seeds). */
export async function connectCluster(seeds: string): Promise<Cluster> {
  const cluster = new Cluster(clusterNodes(seeds), { shardedSubscribers: true, redisOptions: { maxRetriesPerRequest: 2, connectTimeout: 3000 } });
  try {
    await cluster.ping();
  } catch (error) {
    cluster.disconnect();
    throw new Error(`cannot reach the Redis Cluster at ${seeds}: ${String(error)}`);
  }
  return cluster;
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
