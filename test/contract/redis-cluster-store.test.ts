import type { Cluster } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { clusterSeeds, connectCluster } from '../support/services.js';
import { redisStoreFactory } from './redis-store-factory.js';
import { topicStoreContract } from './topic-store.contract.js';

// Never skip: without the cluster these tests must fail. `npm test` (scripts/test.sh) starts the 3 + 3
// Redis Cluster and sets BONDX_TEST_REDIS_CLUSTER_NODES.
const SEEDS = clusterSeeds('the Redis Cluster store contract tests');

let cluster: Cluster;

beforeAll(async () => {
  cluster = await connectCluster(SEEDS);
});

afterAll(async () => {
  await cluster?.quit();
});

topicStoreContract('RedisTopicStore + RedisLiveFeed on a Redis Cluster (3 masters)', redisStoreFactory(() => cluster), { nodes: 3 });
