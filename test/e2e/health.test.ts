import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { loadConfig } from '../../src/config/config.js';
import { createKafka } from '../../src/ingest/kafka/kafka-client.js';
import { FAMILIES, kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startTestSystem, waitFor, type TestSystem } from '../support/harness.js';

/**
 * `GET /api/v1/ws/health` reports real backend connectivity: Redis by ping, Kafka from the state of
 * this process's producer and projector consumer (their kafkajs instrumentation events).
 */

// Never skip: without the services these tests must fail. `npm test` (scripts/test.sh) starts both.
const REDIS_URL = serviceUrl('REDIS_URL', 'the health tests');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the health tests');

const RUN = `health-${randomBytes(4).toString('hex')}`;

interface ClientStatus {
  status: string;
  since: string;
  detail?: string;
}
interface Health {
  status: string;
  reasons: string[];
  redis?: { status: string };
  kafka: { status: string; detail?: string; producer?: ClientStatus; consumer?: ClientStatus };
}

/** The health body, checking the HTTP status machines read: 503 exactly when `down`. */
async function health(system: TestSystem): Promise<Health> {
  const res = await fetch(`${system.server.url}/api/v1/ws/health`);
  const body = (await res.json()) as Health;
  expect(res.status).toBe(body.status === 'down' ? 503 : 200);
  return body;
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
      const body = await health(memory);
      expect(body.kafka).toEqual({ status: 'off' });
      expect(body.redis).toBeUndefined();
      expect(body.status).toBe('ok');
    } finally {
      await memory.close();
    }
  });

  it('with Redis and Kafka: redis up, kafka producer and consumer up once the consumer joined its group', async () => {
    system = await startTestSystem({ REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '1' });
    const s = system;
    await waitFor(async () => (await health(s)).kafka.consumer?.detail?.startsWith('member of group') ?? false, 20_000, 'the consumer to join its group');
    const body = await health(s);
    expect(body.redis?.status).toBe('up');
    expect(body.kafka.status).toBe('up');
    expect(body.kafka.producer).toMatchObject({ status: 'up' });
    expect(body.kafka.consumer).toMatchObject({ status: 'up', detail: `member of group ${RUN}-projector` });
    expect(Number.isNaN(Date.parse(body.kafka.consumer?.since ?? ''))).toBe(false);
    expect(body.reasons.filter((r) => r.includes('down'))).toEqual([]);
    expect(await readiness(s)).toEqual({ http: 200, status: 'ready', reasons: [] });
  });

  it('a stopped consumer turns kafka and the overall status down, with the reason', async () => {
    const s = system;
    if (!s?.consumer) throw new Error('the previous test did not start a system with a Kafka consumer');
    await s.consumer.stop();
    const body = await health(s);
    expect(body.kafka.status).toBe('down');
    expect(body.kafka.consumer?.status).toBe('down');
    expect(body.kafka.producer?.status).toBe('up');
    expect(body.status).toBe('down');
    expect(body.reasons.some((r) => r.startsWith('kafka is down') && r.includes('consumer'))).toBe(true);
    expect(body.redis?.status).toBe('up');
    // Not ready while Kafka is unreachable, but alive: a restart is not what fixes a broker.
    const ready = await readiness(s);
    expect(ready).toMatchObject({ http: 503, status: 'not_ready' });
    expect(ready.reasons.some((r) => r.startsWith('kafka is down'))).toBe(true);
    expect((await fetch(`${s.server.url}/livez`)).status).toBe(200);
  });

  it('Redis unreachable: health 503 down with the reason, readyz 503', async () => {
    // Its command connection cut after a successful start: every Redis call of the backends fails from then on.
    const unreachable = await startTestSystem({ REDIS_URL, REDIS_PREFIX: `${RUN}-down` });
    try {
      unreachable.backends.redis?.client.disconnect();
      const body = await health(unreachable);
      expect(body.status).toBe('down');
      expect(body.reasons.some((r) => r.startsWith('redis is down'))).toBe(true);
      expect((await readiness(unreachable)).http).toBe(503);
    } finally {
      await unreachable.close();
    }
  });
});
