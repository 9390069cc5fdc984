import { Redis } from 'ioredis';
import type { RedisClient } from '../store/redis/client.js';
import { DEFAULTS } from '../config/config.js';
import { pruneNesting } from '../domain/json.js';
import { redisKeys, type RedisKeyLayout } from '../store/redis/keys.js';
import type { DeadLetter, DeadLetterStore } from './dead-letter.js';

export interface RedisDeadLetterStoreOptions {
  /** Namespace (REDIS_PREFIX). */
  prefix: string;
  /** Dead letters kept (newest); the total count is kept exactly. DEAD_LETTERS_MAX_LEN. */
  maxLen?: number;
}

/**
 * Dead letters in Redis: a capped list `keys.deadLetters` (JSON, newest first) plus a counter
 * `keys.deadLetterCount` of all letters ever added, updated together in one MULTI.
 * Given a URL the store owns its connection and `close()` quits it; given a client, the caller owns it.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  readonly keys: RedisKeyLayout;
  private readonly redis: RedisClient;
  private readonly ownsClient: boolean;
  private readonly maxLen: number;

  constructor(redis: RedisClient | string, options: RedisDeadLetterStoreOptions) {
    this.ownsClient = typeof redis === 'string';
    this.redis = typeof redis === 'string' ? new Redis(redis) : redis;
    this.keys = redisKeys(options.prefix);
    this.maxLen = options.maxLen ?? DEFAULTS.DEAD_LETTERS_MAX_LEN;
    if (!Number.isInteger(this.maxLen) || this.maxLen < 1) throw new Error(`maxLen must be a positive integer, got ${this.maxLen}`);
  }

  async add(letter: DeadLetter): Promise<void> {
    const results = await this.redis
      .multi()
      .lpush(this.keys.deadLetters, serialize(letter))
      .ltrim(this.keys.deadLetters, 0, this.maxLen - 1)
      .incr(this.keys.deadLetterCount)
      .exec();
    const failed = results?.find(([error]) => error !== null);
    if (!results || failed) throw failed?.[0] ?? new Error('Redis transaction aborted');
  }

  async list(limit: number): Promise<DeadLetter[]> {
    const count = Math.floor(limit);
    if (!(count > 0)) return [];
    const raw = await this.redis.lrange(this.keys.deadLetters, 0, count - 1);
    return raw.map(deserialize);
  }

  async count(): Promise<number> {
    return Number((await this.redis.get(this.keys.deadLetterCount)) ?? 0);
  }

  async close(): Promise<void> {
    if (this.ownsClient && this.redis.status !== 'end') await this.redis.quit();
  }
}

/** A dead letter must never be lost to serialization: an event JSON cannot represent is kept as text. */
function serialize(letter: DeadLetter): string {
  try {
    return JSON.stringify(letter);
  } catch {
    return JSON.stringify({ ...letter, event: safeText(letter.event) });
  }
}

function safeText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Whatever an entry holds (written by an older version, by hand, or corrupt) reads back as a letter
 * that can be serialised again: unparseable text is kept as text, nesting is cut at MAX_JSON_DEPTH.
 */
function deserialize(raw: string): DeadLetter {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { at: '', reason: 'unreadable dead-letter entry', source: '', event: raw };
  }
  const d = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    at: typeof d.at === 'string' ? d.at : '',
    reason: typeof d.reason === 'string' ? d.reason : '',
    source: typeof d.source === 'string' ? d.source : '',
    event: pruneNesting(d.event),
  };
}
