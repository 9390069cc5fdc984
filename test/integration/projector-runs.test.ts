import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DomainEvent, PositionEvent, RiskMetricsEvent } from '../../src/domain/events.js';
import { entityOf } from '../../src/domain/topics.js';
import { silentLogger } from '../../src/observability/logger.js';
import { Projector, type ApplyOutcome, type SourcedEvent } from '../../src/projector/projector.js';
import { ChainVerifier, genesisHash } from '../../src/store/chain.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { SourceOffsetMismatch } from '../../src/store/topic-store.js';
import { eventId, quote } from '../support/events.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * The projector commits each stretch of one entity's events of a Kafka batch in one store round trip
 * (Projector.applyRun → TopicStore.commitRun, one commit.lua call). On a real Redis: the history is the
 * one that applying the events one after another gives; a refusal in the middle of a run commits what
 * came before it, is handled as `apply` handles it alone, and lets no later offset pass.
 */
const REDIS_URL = serviceUrl('REDIS_URL', 'the projector runs test');
const PREFIX = `bxtest:runs:${randomBytes(4).toString('hex')}`;
const STREAM = 'bondx.market/0';
const [ISIN_A, ISIN_B] = ['IN0020230085', 'IN0020240019'];
const [A, B] = [entityOf(`prices.${ISIN_A}`), entityOf(`prices.${ISIN_B}`)];
let redis: Redis;
let stores = 0;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});
afterAll(async () => {
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

function projectorOnFreshStore(): { store: RedisTopicStore; projector: Projector } {
  const store = new RedisTopicStore(redis, { prefix: `${PREFIX}:${++stores}` });
  return { store, projector: new Projector(store, silentLogger) };
}

/** Events at consecutive offsets from `first`, with record times one millisecond apart (as Kafka gives them). */
function sourced(events: DomainEvent[], first: number): SourcedEvent[] {
  return events.map((event, i) => ({ event, source: { stream: STREAM, offset: String(first + i), ts: new Date(Date.UTC(2026, 11, 2, 12, 0, 0, first + i)).toISOString() } }));
}

function statuses(outcomes: ApplyOutcome[]): string[] {
  return outcomes.map((o) => (o.applied ? 'applied' : o.reason));
}

const user = `u${randomBytes(3).toString('hex')}`;
const risk = (n: number): RiskMetricsEvent => ({ event_id: eventId('rm'), type: 'risk.metrics', ts: new Date().toISOString(), user_id: user, exposure: 1_000_000 + n, dv01: 10 + n, limit_utilisation: 0.1 });
const position = (n: number): PositionEvent => ({ event_id: eventId('pos'), type: 'position', ts: new Date().toISOString(), user_id: user, isin: ISIN_A, quantity: 1000 * n, avg_price: 99.5 });

describe('Projector.applyRun over Redis', () => {
  it('commits each stretch of one entity in one round trip, the same history as one apply after another', async () => {
    const batch = sourced([...Array.from({ length: 10 }, () => quote(ISIN_A)), ...Array.from({ length: 5 }, () => quote(ISIN_B)), ...Array.from({ length: 5 }, () => quote(ISIN_A))], 100);
    const runs = projectorOnFreshStore();
    const commitRun = vi.spyOn(runs.store, 'commitRun');
    const commit = vi.spyOn(runs.store, 'commit');
    const { outcomes, failed } = await runs.projector.applyRun(batch);
    expect(failed).toBeUndefined();
    expect(statuses(outcomes)).toEqual(batch.map(() => 'applied'));
    // Three stretches (A, B, A): three script calls, none per event.
    expect(commitRun.mock.calls.map(([inputs]) => inputs.length)).toEqual([10, 5, 5]);
    expect(commit).not.toHaveBeenCalled();

    const serial = projectorOnFreshStore();
    for (const { event, source } of batch) expect((await serial.projector.apply(event, source)).applied).toBe(true);
    for (const isin of [ISIN_A, ISIN_B]) {
      const topic = `prices.${isin}`;
      const [ours, theirs] = await Promise.all([runs.store.readAfter(topic, 0, 100), serial.store.readAfter(topic, 0, 100)]);
      const content = (read: typeof ours) => read.entries.map(({ seq, event_id, ts, payload }) => ({ seq, event_id, ts, payload }));
      expect(content(ours)).toEqual(content(theirs));
      expect(ours.entries.map((e) => e.seq)).toEqual(Array.from({ length: isin === ISIN_A ? 15 : 5 }, (_, i) => i + 1));
      const verifier = new ChainVerifier(topic, genesisHash(topic, ours.entries[0]?.epoch ?? ""));
      for (const entry of ours.entries) expect(verifier.check(entry)).toBeUndefined();
      expect((await runs.store.snapshot(topic))?.state).toEqual((await serial.store.snapshot(topic))?.state);
    }
    expect(await runs.store.appliedOffset(A, STREAM)).toBe('119');
    expect(await runs.store.appliedOffset(B, STREAM)).toBe('114');
  });

  it('a duplicate event id in the middle: that one is a duplicate, the ones after it follow under the same epoch, seqs contiguous', async () => {
    const { store, projector } = projectorOnFreshStore();
    const first = quote(ISIN_A);
    expect((await projector.apply(first, { stream: STREAM, offset: '0' })).applied).toBe(true);
    const epoch = (await store.snapshot(`prices.${ISIN_A}`))?.epoch;
    const { outcomes, failed } = await projector.applyRun(sourced([quote(ISIN_A), { ...quote(ISIN_A), event_id: first.event_id }, quote(ISIN_A), quote(ISIN_A)], 1));
    expect(failed).toBeUndefined();
    expect(statuses(outcomes)).toEqual(['applied', 'duplicate_event', 'applied', 'applied']);
    const read = await store.readAfter(`prices.${ISIN_A}`, 0, 100);
    expect(read.entries.map((e) => [e.seq, e.epoch])).toEqual([1, 2, 3, 4].map((seq) => [seq, epoch]));
    expect(await store.appliedOffset(A, STREAM)).toBe('4');
  });

  it('a head another writer moved in the middle: re-read, no new epoch, every event once and in order', async () => {
    const { store, projector } = projectorOnFreshStore();
    expect(statuses((await projector.applyRun(sourced([risk(0), position(0)], 0))).outcomes)).toEqual(['applied', 'applied']);
    const portfolio = `portfolio.${user}`;
    const epoch = (await store.snapshot(portfolio))?.epoch;
    // Someone else commits to the portfolio topic after the projector cached its head.
    const other = new RedisTopicStore(redis, { prefix: store.keys.prefix });
    expect((await other.commit({ eventId: eventId('other'), eventTs: new Date().toISOString(), changes: [{ topic: portfolio, type: 'delta', payload: { kind: 'position' }, state: { other: true } }] })).applied).toBe(true);
    // The portfolio topic first appears second in this run: its head is refused there, after the risk event committed.
    const commitRun = vi.spyOn(store, 'commitRun');
    const { outcomes, failed } = await projector.applyRun(sourced([risk(1), position(1), risk(2), position(2)], 2));
    expect(failed).toBeUndefined();
    expect(statuses(outcomes)).toEqual(['applied', 'applied', 'applied', 'applied']);
    expect(commitRun.mock.calls[0]?.[0]).toHaveLength(4);
    const read = await store.readAfter(portfolio, 0, 100);
    expect(read.entries.map((e) => [e.seq, e.epoch])).toEqual([1, 2, 3, 4].map((seq) => [seq, epoch]));
    expect((await store.readAfter(`risk.${user}`, 0, 100)).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await store.appliedOffset(entityOf(`risk.${user}`), STREAM)).toBe('5');
  });

  it('an entity whose offset the store lost, after another entity: the run commits what came before it and nothing from it on', async () => {
    const { store, projector } = projectorOnFreshStore();
    expect(statuses((await projector.applyRun(sourced([quote(ISIN_A), quote(ISIN_B)], 0))).outcomes)).toEqual(['applied', 'applied']);
    // B's shard came back without its last write of the stream (the projector believes offset 1).
    await redis.hset(store.keys.offsets(B), STREAM, '0');
    const { outcomes, failed } = await projector.applyRun(sourced([quote(ISIN_A), quote(ISIN_A), quote(ISIN_B), quote(ISIN_A)], 2));
    expect(statuses(outcomes)).toEqual(['applied', 'applied']);
    expect(failed).toEqual(new SourceOffsetMismatch(STREAM, '1', '0'));
    // Nothing after the refused record: A's offset 5 did not pass, and B wrote nothing.
    expect(await store.appliedOffset(A, STREAM)).toBe('3');
    expect((await store.readAfter(`prices.${ISIN_A}`, 0, 100)).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect((await store.snapshot(`prices.${ISIN_B}`))?.seq).toBe(1);
    expect(await store.appliedOffset(B, STREAM)).toBe('0');
  });
});
