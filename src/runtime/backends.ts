import type { Redis } from 'ioredis';
import type { Config } from '../config/config.js';
import { MemoryDeadLetterStore, type DeadLetterStore } from '../ingest/dead-letter.js';
import type { Logger } from '../observability/logger.js';
import { MemoryTopicStore } from '../store/memory-store.js';
import type { LiveFeed, TopicStore } from '../store/topic-store.js';

/** The storage a role runs on: in memory (embedded mode) or Redis (`REDIS_URL`). */
export interface Backends {
  kind: 'memory' | 'redis';
  store: TopicStore;
  live: LiveFeed;
  deadLetters: DeadLetterStore;
  /** The command connection, for what else lives in Redis (cross-gateway admission limits). */
  redis?: { client: Redis; prefix: string };
  /** Connectivity for health. */
  health(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

export async function createBackends(config: Config, log: Logger): Promise<Backends> {
  if (config.REDIS_URL) {
    const { createRedisBackends } = await import('./redis-backends.js');
    return createRedisBackends(config, log);
  }
  const store = new MemoryTopicStore(config.HISTORY_MAX_LEN);
  return {
    kind: 'memory',
    store,
    live: store,
    deadLetters: new MemoryDeadLetterStore(),
    health: async () => ({ store: 'memory' }),
    close: () => store.close(),
  };
}
