import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../../src/store/redis/client.js';
import { RedisLiveFeed } from '../../src/store/redis/redis-live-feed.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { deleteKeys } from '../support/services.js';
import type { StoreFactory } from './topic-store.contract.js';

/**
 * The store contract's factory on a Redis deployment (a node or a cluster): every store gets its own key
 * namespace under `filePrefix` on the one connection `client()` gives, so test files (and tests) share
 * one Redis without FLUSHDB. `client` is read per store: the test file connects in beforeAll.
 */
export function redisStoreFactory(client: () => RedisClient, filePrefix = `bxtest:${randomBytes(4).toString('hex')}`): StoreFactory {
  let n = 0;
  return async ({ maxLen, dedupWindow }) => {
    const redis = client();
    const prefix = `${filePrefix}:${++n}`;
    const store = new RedisTopicStore(redis, { prefix, maxLen, dedupWindow });
    const feed = new RedisLiveFeed(redis, { prefix, onError: (error) => console.error('live feed error', error) });
    return {
      store,
      feed,
      dispose: async () => {
        await feed.close();
        await store.close();
        await deleteKeys(redis, `${prefix}:*`);
      },
    };
  };
}
