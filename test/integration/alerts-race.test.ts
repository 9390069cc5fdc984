import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertThresholdsSchema } from '../../src/config/config.js';
import { SYSTEM_ALERTS_TOPIC } from '../../src/domain/topics.js';
import { AlertMonitor } from '../../src/observability/alerts.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * Every gateway publishes its alerts to the one system.alerts topic. Two monitors on two connections
 * to one real Redis raise and clear at the same moments, round after round: the topic's state must
 * always list exactly the alerts active on each, never lose one process's to the other's write.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the system.alerts race test');
const PREFIX = `alerts-race-${randomBytes(4).toString('hex')}`;
const ROUNDS = 15;

interface Source {
  monitor: AlertMonitor;
  /** The largest outbound queue this process reports: above max_queue_size raises `queue_size`. */
  queue: number;
}

const connections: Redis[] = [];
const sources: Source[] = [];
/** What an operator's snapshot would show. */
let reader: RedisTopicStore;

function source(instance: string, redis: Redis): Source {
  const metrics = new Metrics({ defaultMetrics: false });
  const store = new RedisTopicStore(redis, { prefix: PREFIX });
  const monitor = new AlertMonitor({ metrics, store, log: silentLogger, instance, thresholds: alertThresholdsSchema.parse({ max_queue_size: 10 }), intervalMs: 60_000, windowMs: 60_000, minSamples: 1 });
  const s: Source = { monitor, queue: 0 };
  metrics.queueSizesFrom(() => new Map([['market', s.queue]]));
  return s;
}

beforeAll(async () => {
  for (const instance of ['gateway-a', 'gateway-b']) {
    const redis = await connectRedis(REDIS_URL);
    connections.push(redis);
    sources.push(source(instance, redis));
  }
  reader = new RedisTopicStore(connections[0] as Redis, { prefix: PREFIX });
});

afterAll(async () => {
  const [redis] = connections;
  if (redis) await deleteKeys(redis, `${PREFIX}:*`);
  for (const r of connections) await r.quit();
});

async function activeInstances(): Promise<string[]> {
  const snapshot = await reader.snapshot(SYSTEM_ALERTS_TOPIC);
  const active = (snapshot?.state.active ?? []) as { instance: string; name: string }[];
  return active.map((a) => `${a.instance}:${a.name}`).sort();
}

describe('system.alerts with two writers', () => {
  it('concurrent raises and clears never overwrite the other process’s active alerts', async () => {
    const [a, b] = sources as [Source, Source];
    for (let round = 0; round < ROUNDS; round++) {
      // Both raise at once, then (alternately) one or both clear at once.
      a.queue = b.queue = 50;
      await Promise.all([a.monitor.tick(), b.monitor.tick()]);
      await Promise.all([a.monitor.flushed(), b.monitor.flushed()]);
      expect(await activeInstances(), `round ${round}, both raised`).toEqual(['gateway-a:queue_size', 'gateway-b:queue_size']);

      a.queue = 0;
      if (round % 2 === 1) b.queue = 0;
      await Promise.all([a.monitor.tick(), b.monitor.tick()]);
      await Promise.all([a.monitor.flushed(), b.monitor.flushed()]);
      expect(await activeInstances(), `round ${round}, cleared`).toEqual(round % 2 === 1 ? [] : ['gateway-b:queue_size']);
      if (round % 2 === 0) {
        b.queue = 0;
        await b.monitor.tick();
        await b.monitor.flushed();
      }
    }
    // Every raise and clear is one entry: 2 raises + 2 clears per round, none lost.
    const snapshot = await reader.snapshot(SYSTEM_ALERTS_TOPIC);
    expect(snapshot?.seq).toBe(ROUNDS * 4);
  });
});
