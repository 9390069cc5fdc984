import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuoteEvent } from '../../src/domain/events.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Projector } from '../../src/projector/projector.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * A projector without a replayable source (events published straight to it, no Kafka) whose Redis comes
 * back older: the entries it lost cannot be rebuilt, so the next commit must not reuse their seqs under
 * the old epoch. The rollback is a real one: the topic's keys are DUMPed and later RESTOREd over newer data.
 */
const REDIS_URL = serviceUrl('REDIS_URL', 'the projector realign test');
const PREFIX = `bxtest:realign:${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});
afterAll(async () => {
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

let n = 0;
const quote = (): QuoteEvent => ({ event_id: `${PREFIX}-${++n}`, type: 'quote', ts: new Date().toISOString(), isin: ISIN, bid: 99 + n / 100, ask: 99.1 + n / 100, bid_size: 1_000_000, ask_size: 1_000_000 });

describe('Projector over a store that came back older', () => {
  it('gives the topic a new epoch instead of handing lost seqs to other events', async () => {
    const store = new RedisTopicStore(redis, { prefix: PREFIX });
    const projector = new Projector(store, silentLogger);
    for (let i = 0; i < 3; i++) expect((await projector.apply(quote())).applied).toBe(true);
    const keys = [store.keys.meta(TOPIC), store.keys.history(TOPIC)];
    const saved = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
    const before = await store.snapshot(TOPIC);
    for (let i = 0; i < 2; i++) expect((await projector.apply(quote())).applied).toBe(true);
    // Back to seq 3, as a restore from that moment would leave it.
    for (const [i, key] of keys.entries()) await redis.restore(key, 0, saved[i] as Buffer, 'REPLACE');
    expect((await store.snapshot(TOPIC))?.seq).toBe(3);

    const next = await projector.apply(quote());
    if (!next.applied) throw new Error(`not applied: ${next.reason}`);
    const entry = next.entries[0];
    // Seq 4 names another event than it did: only under a new epoch.
    expect(entry?.seq).toBe(4);
    expect(entry?.epoch).not.toBe(before?.epoch);
    expect((await store.snapshot(TOPIC))?.epoch).toBe(entry?.epoch);
  });
});
