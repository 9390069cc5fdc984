import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TopicFeed } from '../../src/gateway/topic-feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { RedisLiveFeed } from '../../src/store/redis/redis-live-feed.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { waitFor } from '../support/waits.js';

/**
 * A gateway's feed of a topic opened while the topic's first entries are being committed (a client
 * subscribing as the projector creates the topic) must know them. The live subscription (SSUBSCRIBE on
 * a connection of its own) becomes active some time after it is asked for: a head read before then, and
 * an entry published before then, would leave the feed at seq 0 with no epoch for good, and every
 * subscribe's snapshot would fail to line up with it.
 */
const REDIS_URL = serviceUrl('REDIS_URL', 'the topic feed start test');
const PREFIX = `feed-start-${randomBytes(4).toString('hex')}`;
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

describe('a topic feed opened as its topic is first committed', () => {
  it('starts from a head read after it listens: it holds the entry committed meanwhile, with its epoch', async () => {
    const store = new RedisTopicStore(redis, { prefix: PREFIX });
    const live = new RedisLiveFeed(redis, { prefix: PREFIX });
    try {
      for (let i = 0; i < 5; i++) {
        const topic = `feed-start-${i}`;
        const feed = new TopicFeed(topic, store, live, silentLogger);
        // Committed right after the feed is opened, before its subscriber connection can be listening.
        const result = await store.commit({ eventId: `${PREFIX}-${i}`, eventTs: new Date().toISOString(), changes: [{ topic, type: 'delta', payload: { kind: 'l1', n: i }, state: { n: i } }] });
        if (!result.applied) throw new Error('not applied');
        await feed.ready;
        // The entry comes by the head read or, when the commit lands after it, live: either way, soon.
        await waitFor(() => feed.head === 1, 2000, () => `feed ${i} at head ${feed.head}, epoch '${feed.epoch}'`).catch(() => undefined);
        expect({ i, head: feed.head, epoch: feed.epoch }).toEqual({ i, head: 1, epoch: result.entries[0]?.epoch });
        feed.close();
      }
    } finally {
      await live.close();
      await store.close();
    }
  });
});
