import { defineConfig } from 'vitest/config';

// Tests talk to real Redis and Kafka (see scripts/services.sh, started by
// `npm test`), so timeouts leave room for consumer-group joins and broker
// round trips. Forks isolate native/socket state per file; 2 workers match
// the 2-core machines this runs on (more would just contend with the broker).
// Two groups, run one after the other: everything, then the backbone on the
// Redis Cluster, whose failover test kills a master of the cluster the other
// files share (alone, it cannot fail their commands; it leaves the cluster whole).
const CLUSTER_FAULTS = 'test/e2e/backbone-cluster.test.ts';
export default defineConfig({
  test: {
    environment: 'node',
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: [CLUSTER_FAULTS], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'cluster faults', include: [CLUSTER_FAULTS], sequence: { groupOrder: 1 } } },
    ],
  },
});
