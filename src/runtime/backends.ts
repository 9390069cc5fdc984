import type { Config } from '../config/config.js';
import { MemoryDeadLetterStore, type DeadLetterStore } from '../ingest/dead-letter.js';
import type { HealthCheck } from '../observability/health.js';
import { MemoryTopicStore } from '../store/memory-store.js';
import type { RedisClient } from '../store/redis/client.js';
import type { LiveFeed, TopicStore } from '../store/topic-store.js';

/**
 * The storage a role runs on: in memory (embedded mode, here) or Redis (`REDIS_URL` or `REDIS_CLUSTER_NODES`, redis-backends.ts).
 * system.ts `createBackends` chooses between them.
 */
export interface Backends {
  kind: 'memory' | 'redis';
  store: TopicStore;
  live: LiveFeed;
  deadLetters: DeadLetterStore;
  /** The command connection, for what else lives in Redis (cross-gateway admission limits). */
  redis?: { client: RedisClient; prefix: string };
  /** The `redis` health check (`off` in memory). */
  health(): Promise<HealthCheck>;
  close(): Promise<void>;
}

export function memoryBackends(config: Config): Backends {
  const store = new MemoryTopicStore(config.HISTORY_MAX_LEN, config.DEDUP_WINDOW);
  return {
    kind: 'memory',
    store,
    live: store,
    deadLetters: new MemoryDeadLetterStore(config.DEAD_LETTERS_MAX_LEN),
    health: async () => ({ name: 'redis', status: 'off', detail: 'in-memory store' }),
    close: () => store.close(),
  };
}
