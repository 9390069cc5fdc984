import type { Config } from '../config/config.js';
import { RedisDeadLetterStore } from '../ingest/redis-dead-letter.js';
import type { Logger } from '../observability/logger.js';
import { createRedisClient, describeTarget, type RedisTarget } from '../store/redis/client.js';
import { RedisLiveFeed } from '../store/redis/redis-live-feed.js';
import { RedisTopicStore } from '../store/redis/redis-store.js';
import type { Backends } from './backends.js';

/**
 * Store, live feed and dead letters on Redis, a single node or a cluster (`target`, from REDIS_URL or
 * REDIS_CLUSTER_NODES): one command connection (per node on a cluster), one subscriber connection.
 */
export async function createRedisBackends(config: Config, log: Logger, target: RedisTarget): Promise<Backends> {
  const redis = createRedisClient(target, { lazyConnect: true, maxRetriesPerRequest: 3 });
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Cannot connect to Redis at ${describeTarget(target)}: ${(err as Error).message}`);
  }
  const prefix = config.REDIS_PREFIX;
  const store = new RedisTopicStore(redis, { prefix, maxLen: config.HISTORY_MAX_LEN, dedupWindow: config.DEDUP_WINDOW });
  const live = new RedisLiveFeed(redis, { prefix, onError: (err, topic) => log.warn({ err, topic }, 'live feed error') });
  const deadLetters = new RedisDeadLetterStore(redis, { prefix, maxLen: config.DEAD_LETTERS_MAX_LEN });
  return {
    kind: 'redis',
    store,
    live,
    deadLetters,
    redis: { client: redis, prefix },
    async health() {
      const started = performance.now();
      try {
        await redis.ping();
        return { name: 'redis', status: 'up', detail: `ping ${Math.round((performance.now() - started) * 100) / 100} ms` };
      } catch (err) {
        return { name: 'redis', status: 'down', detail: (err as Error).message };
      }
    },
    async close() {
      await live.close();
      await redis.quit();
    },
  };
}
