import { randomUUID } from 'node:crypto';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract, type RateLimiterStoreAbstract } from 'rate-limiter-flexible';
import { ClientError } from '../protocol/errors.js';
import type { RedisClient } from '../store/redis/client.js';
import { redisKeys, type RedisKeyLayout } from '../store/redis/keys.js';

export interface AdmissionLimits {
  /** Connection attempts per client IP per minute (before authentication, against token guessing). */
  attemptsPerIpPerMinute: number;
  /** Connection attempts per user per minute. */
  attemptsPerUserPerMinute: number;
  /** Open connections per user across all gateways. */
  connectionsPerUser: number;
}

/** Open connections per user, counted cluster-wide (Redis) or in this process. */
interface UserConnectionCounts {
  /** Registers a connection if the user has fewer than `limit`; resolves with its release, or null. */
  open(user: string, limit: number): Promise<(() => void) | null>;
  close(): Promise<void>;
}

/**
 * Who may open a connection: per-IP and per-user attempt rates (rate-limiter-flexible, in Redis when
 * configured so every gateway shares them) and open connections per user across all gateways.
 */
export class Admission {
  private readonly perIp: RateLimiterAbstract | RateLimiterStoreAbstract;
  private readonly perUser: RateLimiterAbstract | RateLimiterStoreAbstract;
  private readonly counts: UserConnectionCounts;

  constructor(
    private readonly limits: AdmissionLimits,
    redis?: { client: RedisClient; prefix: string },
  ) {
    const shared = redis ? { client: redis.client, keys: redisKeys(redis.prefix) } : undefined;
    const limiter = (name: 'ip' | 'user', points: number) =>
      shared
        ? new RateLimiterRedis({ storeClient: shared.client, keyPrefix: shared.keys.rateLimit(name), points, duration: 60 })
        : new RateLimiterMemory({ keyPrefix: name, points, duration: 60 });
    this.perIp = limiter('ip', limits.attemptsPerIpPerMinute);
    this.perUser = limiter('user', limits.attemptsPerUserPerMinute);
    this.counts = shared ? new RedisUserConnections(shared.client, shared.keys) : new MemoryUserConnections();
  }

  /** Before authentication. Throws RATE_LIMIT_EXCEEDED when the IP is over its attempt rate. */
  async attemptFromIp(ip: string): Promise<void> {
    await consume(this.perIp, ip, { scope: 'ip', limit: `${this.limits.attemptsPerIpPerMinute} connection attempts per minute` });
  }

  /** After authentication: attempt rate and open connections of the user. Resolves with the release. */
  async admitUser(user: string): Promise<() => void> {
    await consume(this.perUser, user, { scope: 'user', limit: `${this.limits.attemptsPerUserPerMinute} connection attempts per minute` });
    const release = await this.counts.open(user, this.limits.connectionsPerUser);
    if (!release) throw new ClientError('TOO_MANY_CONNECTIONS', { scope: 'user', limit: this.limits.connectionsPerUser });
    return release;
  }

  close(): Promise<void> {
    return this.counts.close();
  }
}

async function consume(limiter: RateLimiterAbstract | RateLimiterStoreAbstract, key: string, details: Record<string, unknown>): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (err) {
    // rate-limiter-flexible rejects with a RateLimiterRes when over the limit, with an Error when the store fails.
    if (err instanceof RateLimiterRes) throw new ClientError('RATE_LIMIT_EXCEEDED', { ...details, retry_after_ms: err.msBeforeNext });
    throw err;
  }
}

class MemoryUserConnections implements UserConnectionCounts {
  private readonly open_ = new Map<string, number>();

  async open(user: string, limit: number): Promise<(() => void) | null> {
    const n = this.open_.get(user) ?? 0;
    if (n >= limit) return null;
    this.open_.set(user, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open_.get(user) ?? 1) - 1;
      if (left > 0) this.open_.set(user, left);
      else this.open_.delete(user);
    };
  }

  async close(): Promise<void> {}
}

/** How often a gateway proves it is alive; its counts stop counting 3 intervals after it dies. */
const LIVENESS_MS = 5000;
/** A user's count hash outlives its last change by this long (longer than any session), so abandoned ones disappear. */
const USER_COUNT_TTL_MS = 7 * 24 * 3600 * 1000;

/**
 * Per user a hash (`keys.userConnections`) of gateway id -> open connections. A gateway that dies
 * without cleaning up stops counting once its liveness key (`keys.gatewayAlive`) expires, so a crash
 * never locks users out for long.
 */
class RedisUserConnections implements UserConnectionCounts {
  private readonly id = randomUUID();
  private readonly local = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeyLayout,
  ) {
    const beat = () => void this.redis.set(this.keys.gatewayAlive(this.id), '1', 'PX', LIVENESS_MS * 3).catch(() => undefined);
    beat();
    this.timer = setInterval(beat, LIVENESS_MS);
    this.timer.unref();
  }

  async open(user: string, limit: number): Promise<(() => void) | null> {
    const key = this.keys.userConnections(user);
    // Count first, then check: a race between gateways can only over-count, and is undone below.
    await this.publish(user, 1);
    const counts = await this.redis.hgetall(key);
    const gateways = Object.keys(counts);
    const alive = gateways.length > 0 ? await this.redis.mget(gateways.map((g) => this.keys.gatewayAlive(g))) : [];
    const dead = gateways.filter((g, i) => g !== this.id && !alive[i]);
    if (dead.length > 0) void this.redis.hdel(key, ...dead).catch(() => undefined);
    const total = gateways.reduce((sum, g, i) => sum + (g === this.id || alive[i] ? Math.max(0, Number(counts[g])) : 0), 0);
    if (total > limit) {
      await this.publish(user, -1);
      return null;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      void this.publish(user, -1).catch(() => undefined);
    };
  }

  /**
   * This gateway's count for a user lives here and is written to Redis as an absolute value, so an
   * entry removed by another gateway (e.g. after a Redis restart lost our liveness key) heals on the
   * next change instead of drifting below zero.
   */
  private async publish(user: string, delta: number): Promise<void> {
    const n = (this.local.get(user) ?? 0) + delta;
    const key = this.keys.userConnections(user);
    if (n > 0) {
      this.local.set(user, n);
      await this.redis.multi().hset(key, this.id, n).pexpire(key, USER_COUNT_TTL_MS).exec();
    } else {
      this.local.delete(user);
      await this.redis.hdel(key, this.id);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.redis.del(this.keys.gatewayAlive(this.id)).catch(() => undefined);
  }
}
