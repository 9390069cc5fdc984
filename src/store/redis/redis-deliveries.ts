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
    // All sent at once: the users' streams may be on different cluster nodes.
    await Promise.all([...groupRecords(records, (r) => r.user)].map(([user, list]) => this.redis.xadd(this.keys.deliveries(user), 'MAXLEN', '~', this.maxPerUser, '*', 'r', JSON.stringify(list))));
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
