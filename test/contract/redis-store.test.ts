import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { RedisDeadLetterStore } from '../../src/ingest/redis-dead-letter.js';
import { RedisLiveFeed } from '../../src/store/redis/redis-live-feed.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { redisStoreFactory } from './redis-store-factory.js';
import { topicStoreContract } from './topic-store.contract.js';

// Never skip: without Redis these tests must fail. `npm test` (scripts/test.sh) starts Redis and sets REDIS_URL.
const REDIS_URL = serviceUrl('REDIS_URL', 'the Redis contract tests');

// One connection shared by every store of this file; each store gets its own key namespace so test files
// (and tests) can share one Redis without FLUSHDB.
let redis: Redis;
const filePrefix = `bxtest:${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  if (!redis) return;
  await deleteNamespace(filePrefix);
  await redis.quit();
});

const deleteNamespace = (prefix: string) => deleteKeys(redis, `${prefix}:*`);

topicStoreContract('RedisTopicStore + RedisLiveFeed', redisStoreFactory(() => redis, filePrefix));

describe('RedisTopicStore specifics', () => {
  it('uses the documented key layout', async () => {
    const prefix = `${filePrefix}:layout`;
    const store = new RedisTopicStore(redis, { prefix, maxLen: 100 });
    await store.commit({ eventId: 'e1', eventTs: '2024-01-01T00:00:00.000Z', source: { stream: 'bondx.market/3', offset: '7' }, changes: [{ topic: 'md.l1.X', type: 'delta', payload: { kind: 'l1', bid: 1 }, state: { bid: 1 } }] });
    const keys = (await redis.keys(`${prefix}:*`)).sort();
    // Everything of the commit's entity (a name outside the topic grammar is its own) under its hash tag.
    expect(keys).toEqual([`${prefix}:{md.l1.X}:dedup`, `${prefix}:{md.l1.X}:offsets`, `${prefix}:{md.l1.X}:topics`, `${prefix}:{md.l1.X}:md.l1.X:h`, `${prefix}:{md.l1.X}:md.l1.X:meta`].sort());
    expect(await redis.type(`${prefix}:{md.l1.X}:md.l1.X:h`)).toBe('stream');
    expect(await redis.xrange(`${prefix}:{md.l1.X}:md.l1.X:h`, '-', '+')).toEqual([
      ['1-0', ['type', 'delta', 'ts', expect.any(String), 'event_ts', '2024-01-01T00:00:00.000Z', 'event_id', 'e1', 'payload', '{"kind":"l1","bid":1}', 'epoch', expect.any(String), 'hash', expect.stringMatching(/^[0-9a-f]{64}$/)]],
    ]);
    expect(await redis.hmget(`${prefix}:{md.l1.X}:md.l1.X:meta`, 'seq', 'hash')).toEqual(['1', expect.stringMatching(/^[0-9a-f]{64}$/)]);
    await store.appendAuditCheckpoint({ topic: 'md.l1.X', epoch: 'e', seq: 1, hash: 'h', ts: 't', signed_at: 's', key_id: 'k', sig: 'x' });
    expect(await redis.type(`${prefix}:{md.l1.X}:md.l1.X:audit`)).toBe('stream');
    expect(await redis.hget(`${prefix}:{md.l1.X}:offsets`, 'bondx.market/3')).toBe('7');
    await deleteNamespace(prefix);
  });

  it('keeps the dedup window in a sorted set of exactly dedupWindow ids', async () => {
    const prefix = `${filePrefix}:dedup`;
    const store = new RedisTopicStore(redis, { prefix, dedupWindow: 10 });
    for (let i = 0; i < 25; i++) await store.commit({ eventId: `id-${i}`, eventTs: '2024-01-01T00:00:00.000Z', changes: [] });
    expect(await redis.zrange(store.keys.dedup('source:'), '0', '-1')).toEqual(Array.from({ length: 10 }, (_, i) => `id-${15 + i}`));
    await deleteNamespace(prefix);
  });

  it('rejects a non-decimal source offset before touching Redis', async () => {
    const store = new RedisTopicStore(redis, { prefix: `${filePrefix}:bad` });
    await expect(store.commit({ eventId: 'x', eventTs: '', source: { stream: 's', offset: '-1' }, changes: [] })).rejects.toThrow(/decimal/);
  });

  it('owns and closes a connection created from a URL', async () => {
    const prefix = `${filePrefix}:url`;
    const store = new RedisTopicStore(REDIS_URL, { prefix });
    const feed = new RedisLiveFeed(REDIS_URL, { prefix });
    const seen: number[] = [];
    feed.subscribe('u', (e) => seen.push(e.seq));
    await feed.ready();
    await store.commit({ eventId: 'u1', eventTs: '', changes: [{ topic: 'u', type: 'delta', payload: { kind: 'k' }, state: {} }] });
    await expect.poll(() => seen).toEqual([1]);
    await feed.close();
    await store.close();
    await deleteNamespace(prefix);
  });
});

describe('RedisDeadLetterStore', () => {
  it('keeps the newest maxLen letters, newest first, and counts all', async () => {
    const prefix = `${filePrefix}:dlq`;
    const dlq = new RedisDeadLetterStore(redis, { prefix, maxLen: 3 });
    expect(await dlq.count()).toBe(0);
    expect(await dlq.list(10)).toEqual([]);
    for (let i = 0; i < 5; i++) await dlq.add({ at: `t${i}`, reason: 'bad', source: 'http', event: i % 2 ? { i } : `raw ${i}` });
    expect(await dlq.count()).toBe(5);
    expect(await dlq.list(10)).toEqual([
      { at: 't4', reason: 'bad', source: 'http', event: 'raw 4' },
      { at: 't3', reason: 'bad', source: 'http', event: { i: 3 } },
      { at: 't2', reason: 'bad', source: 'http', event: 'raw 2' },
    ]);
    expect((await dlq.list(1)).map((d) => d.at)).toEqual(['t4']);
    expect(await dlq.list(0)).toEqual([]);
    // Unserializable events are kept as text rather than lost.
    await dlq.add({ at: 't5', reason: 'bigint', source: 'http', event: 10n });
    expect((await dlq.list(1))[0]?.event).toBe('10');
    await deleteNamespace(prefix);
  });
});
