import { randomBytes } from 'node:crypto';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { Admission } from '../../src/flow/admission.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Backends } from '../../src/runtime/backends.js';
import { createBackends } from '../../src/runtime/system.js';
import type { RedisClient } from '../../src/store/redis/client.js';
import { redisKeys } from '../../src/store/redis/keys.js';
import { RedisLiveFeed } from '../../src/store/redis/redis-live-feed.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { waitFor } from '../support/waits.js';

/**
 * The Redis backends on a real Redis Cluster (3 masters + 3 replicas, scripts/services.sh): the
 * connection from REDIS_CLUSTER_NODES, and what must stay within one hash slot there (a MULTI, an
 * MGET, a shard channel) does. Never skipped: `npm test` starts the cluster and passes it as
 * BONDX_TEST_REDIS_CLUSTER_NODES (not REDIS_CLUSTER_NODES, which the suite's spawned roles would inherit).
 */
const NODES = process.env.BONDX_TEST_REDIS_CLUSTER_NODES;
if (!NODES) throw new Error('BONDX_TEST_REDIS_CLUSTER_NODES is not set: run `npm test` (it starts the Redis Cluster), or `bash scripts/services.sh up` and set it from `bash scripts/services.sh env`');

const PREFIX = `bxcl-${randomBytes(4).toString('hex')}`;
const config = loadConfig({ REDIS_CLUSTER_NODES: NODES, REDIS_PREFIX: PREFIX });
let backends: Backends;
let client: RedisClient;

beforeAll(async () => {
  backends = await createBackends(config, silentLogger);
  if (!backends.redis) throw new Error('REDIS_CLUSTER_NODES gave no Redis backends');
  client = backends.redis.client;
});

afterAll(async () => {
  await backends?.close();
});

/** The hash slot Redis Cluster puts a key (or shard channel) in. */
async function slot(key: string): Promise<number> {
  return Number(await client.call('CLUSTER', 'KEYSLOT', key));
}

describe('Redis backends on a Redis Cluster (REDIS_CLUSTER_NODES)', () => {
  it('connect to the cluster, and report it healthy', async () => {
    expect(backends.kind).toBe('redis');
    expect(client).toBeInstanceOf(Cluster);
    expect((client as Cluster).nodes('master')).toHaveLength(3);
    expect((await backends.health()).status).toBe('up');
  });

  it("an entity's topic keys, live channels and connection counts are in one slot", async () => {
    const keys = redisKeys(PREFIX);
    const userKeys = ['trading.u1', 'portfolio.u1', 'risk.u1', 'risk.u1.alerts', 'mobile.u1'].flatMap((t) => [keys.meta(t), keys.history(t), keys.live(t)]);
    expect(new Set(await Promise.all([...userKeys, keys.userConnections('u1')].map(slot))).size).toBe(1);
    const isin = 'US0378331005';
    expect(new Set(await Promise.all([keys.meta(`prices.${isin}`), keys.history(`prices.${isin}`), keys.live(`prices.${isin}`)].map(slot))).size).toBe(1);
  });

  it('dead letters: list and counter change in one MULTI', async () => {
    for (let i = 0; i < 3; i++) await backends.deadLetters.add({ at: new Date().toISOString(), reason: 'test', source: 'cluster', event: i });
    expect((await backends.deadLetters.list(10)).map((d) => d.event)).toEqual([2, 1, 0]);
    expect(await backends.deadLetters.count()).toBe(3);
  });

  it('admission: two gateways count one user together (their liveness keys read in one MGET)', async () => {
    const redis = backends.redis;
    if (!redis) throw new Error('no Redis');
    const limits = { attemptsPerIpPerMinute: 100, attemptsPerUserPerMinute: 100, connectionsPerUser: 1 };
    const [a, b] = [new Admission(limits, redis), new Admission(limits, redis)];
    try {
      const release = await a.admitUser('u-cluster');
      await expect(b.admitUser('u-cluster')).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
      release();
      // The release is written in the background: the other gateway admits the user once it landed.
      let admitted: (() => void) | undefined;
      await waitFor(async () => (admitted = await b.admitUser('u-cluster').catch(() => undefined)) !== undefined, 5000, 'the released connection to be free for the other gateway');
      admitted?.();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("live feed: a shard channel's message (SPUBLISH) reaches the SSUBSCRIBEd gateway", async () => {
    const feed = new RedisLiveFeed(client, { prefix: PREFIX });
    const topics = ['prices.US0378331005', 'risk.u2', 'auctions.A-9'];
    const got: HistoryEntry[] = [];
    try {
      for (const topic of topics) feed.subscribe(topic, (entry) => got.push(entry));
      await feed.ready();
      for (const topic of topics) {
        const entry: HistoryEntry = { topic, epoch: 'e1', seq: 1, type: 'delta', ts: '2026-01-01T00:00:00.000Z', event_ts: '2026-01-01T00:00:00.000Z', event_id: `ev-${topic}`, payload: { kind: 'l1' }, hash: 'h' };
        await client.spublish(feed.keys.live(topic), JSON.stringify(entry));
      }
      await waitFor(() => got.length === topics.length, 5000, () => `3 live entries, got ${got.length}`);
      expect(got.map((e) => e.topic).sort()).toEqual([...topics].sort());
    } finally {
      await feed.close();
    }
  });
});
