import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { loadConfig } from '../../src/config/config.js';
import { createKafka } from '../../src/ingest/kafka/kafka-client.js';
import { FAMILIES, kafkaTopic } from '../../src/ingest/kafka/routing.js';
import type { HealthCheck } from '../../src/observability/health.js';
import { silentLogger } from '../../src/observability/logger.js';
import { health, startTestSystem, type HealthBody, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * `GET /api/v1/ws/health` reports real backend connectivity as named checks: Redis by ping, Kafka from
 * the state of this process's producer and projector consumer (their kafkajs instrumentation events).
 * How checks combine is unit-tested in test/unit/health.test.ts.
 */

// Never skip: without the services these tests must fail. `npm test` (scripts/test.sh) starts both.
const REDIS_URL = serviceUrl('REDIS_URL', 'the health tests');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the health tests');

const RUN = `health-${randomBytes(4).toString('hex')}`;

/** One named check of a health body. */
function check(body: HealthBody, name: string): HealthCheck | undefined {
  return body.checks.find((c) => c.name === name);
}

async function readiness(system: TestSystem): Promise<{ http: number; status: string; reasons: string[] }> {
  const res = await fetch(`${system.server.url}/readyz`);
  return { http: res.status, ...((await res.json()) as { status: string; reasons: string[] }) };
}

let redis: Redis;
let system: TestSystem | undefined;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  await system?.close();
  const kafka = createKafka(loadConfig({ KAFKA_BROKERS }), silentLogger, '-health-test');
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [...FAMILIES, 'dlq' as const].map((f) => kafkaTopic(RUN, f)), timeout: 10_000 }).catch(() => undefined);
  await admin.deleteGroups([`${RUN}-projector`]).catch(() => undefined);
  await admin.disconnect();
  await deleteKeys(redis, `${RUN}:*`);
  await redis.quit();
}, 60_000);

describe.sequential('health reports real backend connectivity', () => {
  it('in memory: no Redis, kafka off, status ok', async () => {
    const memory = await startTestSystem();
    try {
      const body = await health(memory.server.url);
      expect(body.checks.map((c) => [c.name, c.status])).toEqual([
        ['redis', 'off'],
        ['kafka_producer', 'off'],
        ['kafka_consumer', 'off'],
        ['projector_lag', 'off'],
        ['alerts', 'up'],
        ['draining', 'up'],
      ]);
      expect(body.status).toBe('ok');
    } finally {
      await memory.close();
    }
  });

  it('with Redis and Kafka: redis up, kafka producer and consumer up once the consumer joined its group', async () => {
    system = await startTestSystem({ REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '1' });
    const s = system;
    await waitFor(async () => check(await health(s.server.url), 'kafka_consumer')?.detail?.startsWith('member of group') ?? false, 20_000, 'the consumer to join its group');
    const body = await health(s.server.url);
    expect(check(body, 'redis')?.status).toBe('up');
    expect(check(body, 'kafka_producer')).toMatchObject({ status: 'up' });
    expect(check(body, 'kafka_consumer')).toMatchObject({ status: 'up', detail: `member of group ${RUN}-projector` });
    expect(Number.isNaN(Date.parse(check(body, 'kafka_consumer')?.since ?? ''))).toBe(false);
    expect(check(body, 'projector_lag')).toMatchObject({ status: 'up', detail: expect.stringMatching(/^\d+ messages$/) });
    expect(body.reasons.filter((r) => r.includes('down'))).toEqual([]);
    expect(await readiness(s)).toEqual({ http: 200, status: 'ready', reasons: [] });
  });

  it('a stopped consumer turns kafka and the overall status down, with the reason', async () => {
    const s = system;
    if (!s?.consumer) throw new Error('the previous test did not start a system with a Kafka consumer');
    await s.consumer.stop();
    const body = await health(s.server.url);
    expect(check(body, 'kafka_consumer')?.status).toBe('down');
    expect(check(body, 'kafka_producer')?.status).toBe('up');
    expect(body.status).toBe('down');
    expect(body.reasons.some((r) => r.startsWith('kafka_consumer is down'))).toBe(true);
    expect(check(body, 'redis')?.status).toBe('up');
    // Not ready while Kafka is unreachable, but alive: a restart is not what fixes a broker.
    const ready = await readiness(s);
    expect(ready).toMatchObject({ http: 503, status: 'not_ready' });
    expect(ready.reasons.some((r) => r.startsWith('kafka_consumer is down'))).toBe(true);
    expect((await fetch(`${s.server.url}/livez`)).status).toBe(200);
  });

  it('Redis unreachable: health 503 down with the reason, readyz 503', async () => {
    // Its command connection cut after a successful start: every Redis call of the backends fails from then on.
    const unreachable = await startTestSystem({ REDIS_URL, REDIS_PREFIX: `${RUN}-down` });
    try {
      unreachable.backends.redis?.client.disconnect();
      const body = await health(unreachable.server.url);
      expect(body.status).toBe('down');
      expect(body.reasons.some((r) => r.startsWith('redis is down'))).toBe(true);
      expect((await readiness(unreachable)).http).toBe(503);
    } finally {
      await unreachable.close();
    }
  });
});
