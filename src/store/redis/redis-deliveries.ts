import { Cluster } from 'ioredis';
import { groupRecords, type DeliveryLog, type DeliveryRecord } from '../deliveries.js';
import type { RedisClient } from './client.js';
import { redisKeys, type RedisKeyLayout } from './keys.js';

/** Stream entries read per XRANGE call. */
const READ_PAGE = 1000;

/**
 * The delivery record without Kafka: one stream per user (`keys.deliveries`, in the user's slot); an
 * entry is the JSON array of the user's ranges one flush wrote (one XADD per user per flush, not per
 * range), the newest ~`maxPerUser` entries kept (MAXLEN ~).
 */
export class RedisDeliveryLog implements DeliveryLog {
  private readonly keys: RedisKeyLayout;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly maxPerUser: number,
  ) {
    this.keys = redisKeys(prefix);
  }

  async append(records: readonly DeliveryRecord[]): Promise<void> {
    const entries = [...groupRecords(records, (r) => r.user)].map(([user, list]) => ({ key: this.keys.deliveries(user), value: JSON.stringify(list) }));
    // On a cluster the users' streams are on different nodes: one command each, all sent at once. On one
    // node, one pipeline: a command's own client-side cost, paid per user, is most of a flush's.
    if (this.redis instanceof Cluster) {
      await Promise.all(entries.map(({ key, value }) => this.redis.xadd(key, 'MAXLEN', '~', this.maxPerUser, '*', 'r', value)));
      return;
    }
    const pipeline = this.redis.pipeline();
    for (const { key, value } of entries) pipeline.xadd(key, 'MAXLEN', '~', this.maxPerUser, '*', 'r', value);
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }

  async read(user: string): Promise<DeliveryRecord[]> {
    const out: DeliveryRecord[] = [];
    let start = '-';
    for (;;) {
      const page = await this.redis.xrange(this.keys.deliveries(user), start, '+', 'COUNT', READ_PAGE);
      for (const [, fields] of page) out.push(...(JSON.parse(fields[1] ?? '[]') as DeliveryRecord[]));
      const last = page.at(-1);
      if (!last || page.length < READ_PAGE) return out;
      start = `(${last[0]}`;
    }
  }

  /** The client is the process's shared one: its owner closes it. */
  async close(): Promise<void> {}
}
