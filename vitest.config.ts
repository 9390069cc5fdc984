import { defineConfig } from 'vitest/config';

// Tests talk to real Redis and Kafka (see scripts/services.sh, started by
// `npm test`), so timeouts leave room for consumer-group joins and broker
// round trips. Forks isolate native/socket state per file; 2 workers match
// the 2-core machines this runs on (more would just contend with the broker).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
  },
});
