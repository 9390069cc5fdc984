import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { ChainVerifier, entryHash, genesisHash } from '../../src/store/chain.js';
import { entityOf } from '../../src/domain/topics.js';
import { HeadMismatch, SourceOffsetMismatch, type ChainHead, type CommitInput, type CommitResult, type HistoryEntry, type LiveFeed, type SourcePosition, type TopicChange, type TopicHead, type TopicStore } from '../../src/store/topic-store.js';
import { sleep, waitFor } from '../support/waits.js';

/** One store under test, fresh and empty (its own namespace). */
export interface StoreUnderTest {
  store: TopicStore;
  feed: LiveFeed;
  /** Releases everything the factory created (store, feed, keys). */
  dispose(): Promise<void>;
}

export interface StoreFactoryOptions {
  /** History entries kept per topic. */
  maxLen: number;
  /** Event ids remembered for de-duplication. */
  dedupWindow: number;
}

export type StoreFactory = (options: StoreFactoryOptions) => Promise<StoreUnderTest>;

let counter = 0;
const uid = (label = 'ev') => `${label}-${process.pid}-${++counter}`;

function change(topic: string, n: number, extra: JsonObject = {}): TopicChange {
  return { topic, type: 'delta', payload: { kind: 'l1', n, ...extra }, state: { last: n, ...extra } };
}

function event(changes: TopicChange[], source?: SourcePosition, eventId = uid()): CommitInput {
  return { eventId, eventTs: '2024-05-01T12:00:00.000Z', changes, ...(source ? { source } : {}) };
}

/**
 * Topics of one fresh entity (a user's five): what one event may touch together. Names outside the topic
 * grammar ('a', 'ch', …) are each an entity of their own.
 */
function entityTopics(): [string, string, string, string, string] {
  const user = `u${process.pid}x${++counter}`;
  return [`trading.${user}`, `portfolio.${user}`, `risk.${user}`, `risk.${user}.alerts`, `mobile.${user}`];
}

/** Where a stream resumes: the highest offset any entity holds (null: none). */
async function resumeOffset(store: TopicStore, stream: string): Promise<string | null> {
  return (await store.sourceOffsets([stream])).get(stream) ?? null;
}

function applied(result: CommitResult): HistoryEntry[] {
  if (!result.applied) throw new Error(`commit not applied: ${result.reason}`);
  return result.entries;
}

/** The shared TopicStore + LiveFeed contract; every implementation runs it. */
/** `nodes`: how many Redis masters hold the store (1 for memory and a single node): where a stream resumes depends on it. */
export function topicStoreContract(name: string, factory: StoreFactory, { nodes = 1 }: { nodes?: number } = {}): void {
  describe(`TopicStore contract: ${name}`, () => {
    const open: StoreUnderTest[] = [];
    const make = async (maxLen = 1000, dedupWindow = 100_000): Promise<StoreUnderTest> => {
      const sut = await factory({ maxLen, dedupWindow });
      open.push(sut);
      return sut;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((sut) => sut.dispose()));
    });

    it('starts seq at 1 and adds exactly 1 per entry, independently per topic', async () => {
      const { store } = await make();
      const seqs: Record<string, number[]> = { a: [], b: [] };
      for (let i = 0; i < 5; i++) {
        for (const topic of ['a', 'a', 'b'] as const) {
          const [entry] = applied(await store.commit(event([change(topic, i)])));
          seqs[topic]?.push(entry?.seq ?? -1);
        }
      }
      expect(seqs.a).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(seqs.b).toEqual([1, 2, 3, 4, 5]);
    });

    it('gives each topic of a multi-topic commit one entry, all from the same event', async () => {
      const { store } = await make();
      const [x, y, z] = entityTopics();
      applied(await store.commit(event([change(x, 0)])));
      const input = event([change(x, 1), change(y, 1), change(z, 1)]);
      const entries = applied(await store.commit(input));
      expect(entries.map((e) => [e.topic, e.seq])).toEqual([
        [x, 2],
        [y, 1],
        [z, 1],
      ]);
      for (const entry of entries) {
        expect(entry.event_id).toBe(input.eventId);
        expect(entry.event_ts).toBe(input.eventTs);
        expect(entry.ts).toBe(entries[0]?.ts);
        expect(Number.isNaN(Date.parse(entry.ts))).toBe(false);
      }
      for (const topic of [x, y, z]) {
        const read = await store.readAfter(topic, 0, 10);
        expect(read.entries.at(-1)).toEqual(entries.find((e) => e.topic === topic));
      }
    });

    it('commits at the source ts when given (canonical form), never before the topic’s previous entry', async () => {
      const { store, feed } = await make();
      const [srcTs, srcTs2] = entityTopics();
      const seen: HistoryEntry[] = [];
      feed.subscribe(srcTs, (entry) => seen.push(entry));
      await feed.ready();
      const at = (ts: string, offset: number, changes = [change(srcTs, offset)]) => store.commit(event(changes, { stream: 'ts/0', offset: String(offset), ts }));
      const [first] = applied(await at('2024-05-01T12:00:01Z', 1));
      expect(first?.ts).toBe('2024-05-01T12:00:01.000Z');
      // An earlier record time (another producer's clock) is raised to the previous entry's; a fresh topic keeps its own.
      const [late, fresh] = applied(await at('2024-05-01T11:59:59.500Z', 2, [change(srcTs, 2), change(srcTs2, 2)]));
      expect(late?.ts).toBe('2024-05-01T12:00:01.000Z');
      expect(fresh?.ts).toBe('2024-05-01T11:59:59.500Z');
      const [next] = applied(await at('2024-05-01T12:00:02.250Z', 3));
      expect(next?.ts).toBe('2024-05-01T12:00:02.250Z');
      const held = (await store.readAfter(srcTs, 0, 10)).entries;
      expect(held.map((e) => e.ts)).toEqual(['2024-05-01T12:00:01.000Z', '2024-05-01T12:00:01.000Z', '2024-05-01T12:00:02.250Z']);
      expect(held).toEqual([first, late, next]);
      expect((await store.snapshot(srcTs))?.ts).toBe('2024-05-01T12:00:02.250Z');
      await waitFor(() => seen.length === 3, 5000, 'live entries');
      expect(seen).toEqual(held);
      // Without a source ts the store's clock is used, still not before the previous entry.
      const [clock] = applied(await store.commit(event([change(srcTs, 4)])));
      expect(Date.parse(clock?.ts ?? '')).toBeGreaterThanOrEqual(Date.parse('2024-05-01T12:00:02.250Z'));
      await expect(at('yesterday', 5)).rejects.toThrow(/source ts must be an ISO-8601 time/);
    });

    it('commits an event without changes (remembered, nothing appended)', async () => {
      const { store } = await make();
      const input = event([], { stream: 's/0', offset: '4' });
      expect(applied(await store.commit(input))).toEqual([]);
      expect(await store.commit({ ...input, source: { stream: 's/0', offset: '5' } })).toEqual({ applied: false, reason: 'duplicate_event' });
      expect(await resumeOffset(store, 's/0')).toBe('5');
      expect(await store.topics()).toEqual([]);
    });

    it('is idempotent by event id', async () => {
      const { store } = await make();
      const [t, u] = entityTopics();
      const input = event([change(t, 1), change(u, 1)]);
      applied(await store.commit(input));
      expect(await store.commit(input)).toEqual({ applied: false, reason: 'duplicate_event' });
      // Same id, other content: still the same event.
      expect(await store.commit({ ...input, changes: [change(t, 2)] })).toEqual({ applied: false, reason: 'duplicate_event' });
      expect((await store.readAfter(t, 0, 10)).entries.map((e) => e.seq)).toEqual([1]);
      expect((await store.snapshot(t))?.seq).toBe(1);
      expect((await store.snapshot(u))?.seq).toBe(1);
    });

    it('is idempotent by source offset: a redelivered range appends nothing', async () => {
      const { store } = await make();
      const stream = 'bondx.market/3';
      expect(await resumeOffset(store, stream)).toBeNull();
      const inputs = Array.from({ length: 12 }, (_, i) => event([change('m', i)], { stream, offset: String(i) }));
      for (const input of inputs) applied(await store.commit(input));
      expect(await resumeOffset(store, stream)).toBe('11');
      // Redelivery of offsets 3..11 (same events) and an older offset with a new event id.
      for (const input of inputs.slice(3)) expect(await store.commit(input)).toEqual({ applied: false, reason: 'already_applied_offset' });
      expect(await store.commit(event([change('m', 99)], { stream, offset: '9' }))).toEqual({ applied: false, reason: 'already_applied_offset' });
      expect((await store.readAfter('m', 0, 100)).headSeq).toBe(12);
      // Offsets compare as numbers, not strings ('9' < '10'); other streams are independent.
      applied(await store.commit(event([change('m', 100)], { stream: 'bondx.market/4', offset: '9' })));
      applied(await store.commit(event([change('m', 101)], { stream: 'bondx.market/4', offset: '10' })));
      expect(await store.commit(event([change('m', 102)], { stream: 'bondx.market/4', offset: '9' }))).toEqual({ applied: false, reason: 'already_applied_offset' });
      // int64 offsets beyond 2^53 keep their exact value.
      applied(await store.commit(event([change('m', 103)], { stream: 'big/0', offset: '9007199254740993' })));
      expect(await store.commit(event([change('m', 104)], { stream: 'big/0', offset: '9007199254740992' }))).toEqual({ applied: false, reason: 'already_applied_offset' });
      expect(await resumeOffset(store, 'big/0')).toBe('9007199254740993');
      expect((await store.readAfter('m', 0, 100)).headSeq).toBe(15);
    });

    it('stores the offset of a duplicate event so consumption resumes past it', async () => {
      const { store } = await make();
      const input = event([change('d', 1)], { stream: 'p/0', offset: '5' });
      applied(await store.commit(input));
      expect(await store.commit({ ...input, source: { stream: 'p/0', offset: '6' } })).toEqual({ applied: false, reason: 'duplicate_event' });
      expect(await resumeOffset(store, 'p/0')).toBe('6');
      expect((await store.snapshot('d'))?.seq).toBe(1);
    });

    it('remembers exactly the newest dedupWindow event ids, even when they arrive within one millisecond', async () => {
      const { store } = await make(1000, 10);
      // Names sort opposite to arrival, so a window ordered by name (ties in a clock score) keeps the oldest.
      const burst = uid('burst');
      const ids = Array.from({ length: 25 }, (_, i) => `${burst}-${String.fromCharCode(122 - i)}`);
      // Issued together: on Redis they are pipelined in order and mostly share one millisecond.
      for (const result of await Promise.all(ids.map((id) => store.commit(event([], undefined, id))))) applied(result);
      // Newest first: a duplicate is not re-remembered, so probing does not move the window.
      for (const id of ids.slice(15).reverse()) expect(await store.commit(event([], undefined, id))).toEqual({ applied: false, reason: 'duplicate_event' });
      expect((await store.commit(event([], undefined, ids[14]))).applied).toBe(true);
    });

    it('refuses a commit whose expected source offset is not the stored one, writing nothing', async () => {
      const { store } = await make();
      const stream = 'exp/0';
      applied(await store.commit(event([change('o', 1)], { stream, offset: '5', after: null })));
      applied(await store.commit(event([change('o', 2)], { stream, offset: '6', after: '5' })));
      // Committers that believe the store is further (it came back older), not as far, or empty.
      for (const after of ['9', '4', null]) {
        const input = event([change('o', 3)], { stream, offset: '10', after });
        await expect(store.commit(input)).rejects.toEqual(new SourceOffsetMismatch(stream, after, '6'));
        expect((await store.snapshot('o'))?.seq).toBe(2);
        expect(await resumeOffset(store, stream)).toBe('6');
      }
      // The refused event id was not consumed either.
      const input = event([change('o', 3)], { stream, offset: '10', after: '9' });
      await expect(store.commit(input)).rejects.toBeInstanceOf(SourceOffsetMismatch);
      expect(applied(await store.commit({ ...input, source: { stream, offset: '7', after: '6' } }))[0]?.seq).toBe(3);
      await expect(store.commit(event([change('o', 4)], { stream: 'fresh/0', offset: '1', after: '0' }))).rejects.toEqual(new SourceOffsetMismatch('fresh/0', '0', null));
    });

    it("keeps an event's topics in one entity: a commit spanning two entities is refused before anything is written", async () => {
      const { store } = await make();
      const [mine] = entityTopics();
      const [theirs] = entityTopics();
      await expect(store.commit(event([change(mine, 1), change(theirs, 1)], { stream: 'span/0', offset: '1' }))).rejects.toThrow(/one entity/);
      expect([await store.snapshot(mine), await store.snapshot(theirs), await resumeOffset(store, 'span/0')]).toEqual([null, null, null]);
    });

    it('de-duplicates and records source offsets per entity; a stream resumes after an offset an entity holds, the highest on one node', async () => {
      const { store } = await make();
      const [a] = entityTopics();
      const [b] = entityTopics();
      const stream = 'per/0';
      const first = event([change(a, 1)], { stream, offset: '3', after: null });
      applied(await store.commit(first));
      applied(await store.commit(event([change(b, 1)], { stream, offset: '5', after: null })));
      expect([await store.appliedOffset(entityOf(a), stream), await store.appliedOffset(entityOf(b), stream), await store.appliedOffset(entityOf(b), 'other/0')]).toEqual(['3', '5', null]);
      // One node: the highest (5). A cluster: the lowest of the masters' highest, 3 when a and b are on different masters
      // (each shard loses its own suffix: test/integration/projector-shard-loss.test.ts).
      const resume = await store.sourceOffsets([stream, 'none/0']);
      expect([...resume.keys()]).toEqual([stream]);
      expect(nodes === 1 ? ['5'] : ['3', '5']).toContain(resume.get(stream));
      // Re-seeked to a's offset + 1 (after a loss): b's record comes again and is refused by b's own offset.
      expect(await store.commit(event([change(b, 99)], { stream, offset: '5', after: '5' }))).toEqual({ applied: false, reason: 'already_applied_offset' });
      applied(await store.commit(event([change(a, 2)], { stream, offset: '4', after: '3' })));
      // `after` is the entity's offset, not the stream's highest.
      await expect(store.commit(event([change(a, 3)], { stream, offset: '6', after: '5' }))).rejects.toEqual(new SourceOffsetMismatch(stream, '5', '4'));
      // An event id is another entity's event there (one event touches one entity), the same one here.
      expect(await store.commit({ ...first, source: { stream, offset: '7' } })).toEqual({ applied: false, reason: 'duplicate_event' });
      expect(applied(await store.commit({ ...first, changes: [change(b, 2)], source: { stream, offset: '8' } })).map((e) => [e.topic, e.seq])).toEqual([[b, 2]]);
      expect((await store.snapshot(a))?.seq).toBe(2);
    });

    it('refuses a commit whose expected topic head is not the stored one, writing nothing', async () => {
      const { store } = await make();
      const [t1, t2] = entityTopics();
      applied(await store.commit(event([change(t1, 1)])));
      applied(await store.commit(event([change(t1, 2)])));
      const h1 = (await store.states([t1])).get(t1) as TopicHead;
      const input = { ...event([change(t1, 3), change(t2, 1)]), expectedHeads: new Map<string, ChainHead | null>([[t1, h1], [t2, { ...h1, seq: 5 }]]) };
      await expect(store.commit(input)).rejects.toEqual(new HeadMismatch(t2, 5, 0));
      expect((await store.snapshot(t1))?.seq).toBe(2);
      expect(await store.snapshot(t2)).toBeNull();
      await expect(store.commit({ ...input, expectedHeads: new Map([[t1, { ...h1, seq: 7 }], [t2, null]]) })).rejects.toMatchObject({ topic: t1, expected: 7, stored: 2 });
      // The same seq with another hash or epoch is another head too.
      await expect(store.commit({ ...input, expectedHeads: new Map([[t1, { ...h1, hash: 'f'.repeat(64) }], [t2, null]]) })).rejects.toMatchObject({ topic: t1, expected: 2, stored: 2 });
      await expect(store.commit({ ...input, expectedHeads: new Map([[t1, { ...h1, epoch: 'other' }], [t2, null]]) })).rejects.toBeInstanceOf(HeadMismatch);
      expect((await store.readAfter(t1, 0, 10)).entries).toHaveLength(2);
      const entries = applied(await store.commit({ ...input, expectedHeads: new Map([[t1, h1], [t2, null]]) }));
      expect(entries.map((e) => [e.topic, e.seq])).toEqual([
        [t1, 3],
        [t2, 1],
      ]);
    });

    it('commits a run of one entity in order, each event chained onto the ones before it, as one commit after another would', async () => {
      const { store, feed } = await make();
      const [t1, t2] = entityTopics();
      const stream = 'run/0';
      const seen: HistoryEntry[] = [];
      feed.subscribe(t1, (entry) => seen.push(entry));
      await feed.ready();
      // The later inputs name only the topics no earlier input changed: t2 first appears in the second.
      const inputs: CommitInput[] = [
        { ...event([change(t1, 1)], { stream, offset: '1', after: null }), expectedHeads: new Map([[t1, null]]) },
        { ...event([change(t1, 2), change(t2, 2)], { stream, offset: '2', after: '1' }), expectedHeads: new Map([[t2, null]]) },
        { ...event([change(t2, 3)], { stream, offset: '3', after: '2' }), expectedHeads: new Map() },
        { ...event([change(t1, 4)], { stream, offset: '5', after: '3' }), expectedHeads: new Map() },
      ];
      const run = await store.commitRun(inputs);
      expect(run.refused).toBeUndefined();
      const entries = run.results.map(applied);
      expect(entries.map((es) => es.map((e) => [e.topic, e.seq]))).toEqual([[[t1, 1]], [[t1, 2], [t2, 1]], [[t2, 2]], [[t1, 3]]]);
      entries.forEach((es, i) => {
        for (const e of es) expect(e.event_id).toBe(inputs[i]?.eventId);
      });
      for (const topic of [t1, t2]) {
        const held = (await store.readAfter(topic, 0, 10)).entries;
        expect(held).toEqual(entries.flat().filter((e) => e.topic === topic));
        let previous = genesisHash(topic, held[0]?.epoch as string);
        for (const entry of held) {
          expect(entry.hash).toBe(entryHash(previous, entry));
          previous = entry.hash;
        }
      }
      expect((await store.snapshot(t2))?.state).toEqual({ last: 3 });
      expect(await store.appliedOffset(entityOf(t1), stream)).toBe('5');
      await waitFor(() => seen.length === 3, 5000, 'live entries');
      expect(seen).toEqual((await store.readAfter(t1, 0, 10)).entries);
      // A commit after the run follows it like any other.
      const next = await store.commit({ ...event([change(t1, 6)], { stream, offset: '6', after: '5' }), expectedHeads: new Map([[t1, (await store.states([t1])).get(t1) ?? null]]) });
      expect(applied(next)[0]?.seq).toBe(4);
    });

    it('stops a run at the first event that does not apply: those before it are committed, it (if refused) and those after it are not', async () => {
      const { store } = await make();
      const [t1, t2] = entityTopics();
      const stream = 'stop/0';
      const dup = uid('dup');
      applied(await store.commit(event([change(t1, 0)], { stream, offset: '1', after: null }, dup)));
      const h1 = (await store.states([t1])).get(t1) as TopicHead;
      const later = { ...event([change(t1, 9)], { stream, offset: '4', after: '3' }), expectedHeads: new Map() };
      // A duplicate event id in the middle: its offset is consumed, the event after it is not attempted.
      const duplicate = await store.commitRun([
        { ...event([change(t1, 1)], { stream, offset: '2', after: '1' }), expectedHeads: new Map([[t1, h1]]) },
        { ...event([change(t1, 2)], { stream, offset: '3', after: '2' }, dup), expectedHeads: new Map() },
        later,
      ]);
      expect(duplicate.refused).toBeUndefined();
      expect(duplicate.results.map((r) => (r.applied ? r.entries.map((e) => e.seq) : r.reason))).toEqual([[2], 'duplicate_event']);
      expect((await store.snapshot(t1))?.seq).toBe(2);
      expect(await store.appliedOffset(entityOf(t1), stream)).toBe('3');
      const h2 = (await store.states([t1])).get(t1) as TopicHead;
      // A refused head in the middle (t2 first appears there, named at a head it does not have): the first
      // event is committed, the refused one and the one after it write nothing.
      const refused = await store.commitRun([
        { ...event([change(t1, 3)], { stream, offset: '4', after: '3' }), expectedHeads: new Map([[t1, h2]]) },
        { ...event([change(t1, 4), change(t2, 4)], { stream, offset: '5', after: '4' }), expectedHeads: new Map([[t2, { ...h2, seq: 7 }]]) },
        { ...event([change(t1, 5)], { stream, offset: '6', after: '5' }), expectedHeads: new Map() },
      ]);
      expect(refused.results.map((r) => (r.applied ? r.entries.map((e) => e.seq) : r.reason))).toEqual([[3]]);
      expect(refused.refused).toEqual(new HeadMismatch(t2, 7, 0));
      expect((await store.readAfter(t1, 0, 10)).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await store.snapshot(t2)).toBeNull();
      expect(await store.appliedOffset(entityOf(t1), stream)).toBe('4');
      // A first event whose offset is not the stored one: nothing at all.
      const h3 = (await store.states([t1])).get(t1) as TopicHead;
      const stale = await store.commitRun([
        { ...event([change(t1, 6)], { stream, offset: '7', after: '9' }), expectedHeads: new Map([[t1, h3]]) },
        { ...event([change(t1, 7)], { stream, offset: '8', after: '7' }), expectedHeads: new Map() },
      ]);
      expect(stale).toEqual({ results: [], refused: new SourceOffsetMismatch(stream, '9', '4') });
      expect((await store.snapshot(t1))?.seq).toBe(3);
      // The events not attempted were not remembered either: they commit later as usual.
      expect(applied(await store.commit({ ...later, source: { stream, offset: '5', after: '4' }, expectedHeads: new Map([[t1, h3]]) }))[0]?.seq).toBe(4);
      await expect(store.commitRun([event([change(t1, 1)]), event([change('other-entity', 1)])])).rejects.toThrow(/one entity/);
    });

    it('chains every entry onto the one before it: hash(0) of the epoch, then hash(n-1), the same in history, live and states', async () => {
      const { store, feed } = await make();
      const seen: HistoryEntry[] = [];
      feed.subscribe('ch', (entry) => seen.push(entry));
      await feed.ready();
      // Two changes of one topic in one commit chain onto each other.
      const entries = [...applied(await store.commit(event([change('ch', 1)]))), ...applied(await store.commit(event([change('ch', 2), change('ch', 3)])))];
      const epoch = entries[0]?.epoch as string;
      let previous = genesisHash('ch', epoch);
      for (const entry of entries) {
        expect(entry.hash).toBe(entryHash(previous, entry));
        previous = entry.hash;
      }
      expect((await store.readAfter('ch', 0, 10)).entries).toEqual(entries);
      await waitFor(() => seen.length === 3, 5000, 'live entries');
      expect(seen).toEqual(entries);
      expect((await store.states(['ch'])).get('ch')).toMatchObject({ epoch, seq: 3, ts: entries[2]?.ts, hash: entries[2]?.hash });
    });

    it('a renewed epoch starts a new chain at the head: hash(0) of the new epoch, the kept entries verifiable under their own', async () => {
      const { store } = await make();
      const [first] = applied(await store.commit(event([change('rc', 1)])));
      const old = first?.epoch as string;
      const renewed = await store.renewEpoch('rc', old);
      const head = (await store.states(['rc'])).get('rc');
      expect(head).toMatchObject({ epoch: renewed, seq: 1, ts: first?.ts, hash: genesisHash('rc', renewed) });
      // A committer still holding the old head is refused (same seq, other epoch and hash).
      await expect(store.commit({ ...event([change('rc', 2)]), expectedHeads: new Map([['rc', first as HistoryEntry]]) })).rejects.toMatchObject({ topic: 'rc', expected: 1, stored: 1 });
      const [next] = applied(await store.commit({ ...event([change('rc', 2)]), expectedHeads: new Map([['rc', head as TopicHead]]) }));
      expect(next).toMatchObject({ epoch: renewed, seq: 2, hash: entryHash(genesisHash('rc', renewed), next as HistoryEntry) });
      const held = (await store.readAfter('rc', 0, 10)).entries;
      expect(held.map((e) => e.epoch)).toEqual([old, renewed]);
      const verifier = new ChainVerifier('rc');
      expect(held.map((e) => verifier.check(e))).toEqual([undefined, undefined]);
    });

    it('a commit naming no heads chains onto the stored ones', async () => {
      const { store } = await make();
      const [a] = applied(await store.commit(event([change('nh', 1)])));
      const [b] = applied(await store.commit({ ...event([change('nh', 2)]), expectedHeads: new Map([['nh', a as HistoryEntry]]) }));
      const [c] = applied(await store.commit(event([change('nh', 3)])));
      expect(c).toMatchObject({ seq: 3, hash: entryHash(b?.hash as string, c as HistoryEntry) });
    });

    it('keeps signed checkpoints per topic, in order', async () => {
      const { store } = await make();
      const checkpoint = (seq: number) => ({ topic: 'cp', epoch: 'e1', seq, hash: String(seq).repeat(64).slice(0, 64), ts: '2024-05-01T12:00:00.000Z', signed_at: '2024-05-01T12:01:00.000Z', key_id: '0123456789abcdef', sig: 'c2ln' });
      expect(await store.auditCheckpoints('cp')).toEqual([]);
      for (const seq of [1, 2, 3]) await store.appendAuditCheckpoint(checkpoint(seq));
      await store.appendAuditCheckpoint({ ...checkpoint(9), topic: 'other' });
      expect(await store.auditCheckpoints('cp')).toEqual([checkpoint(1), checkpoint(2), checkpoint(3)]);
    });

    it('keeps the topics of one entity apart (one user: trading, portfolio, risk, alerts, mobile): own head, history, state and live feed', async () => {
      const { store, feed } = await make();
      const user = `u${++counter}`;
      const [trading, portfolio, risk, alerts, mobile] = [`trading.${user}`, `portfolio.${user}`, `risk.${user}`, `risk.${user}.alerts`, `mobile.${user}`] as const;
      const topics: string[] = [trading, portfolio, risk, alerts, mobile];
      const own = (topic: string, n: number) => change(topic, n, { topic });
      const seen = new Map<string, number[]>(topics.map((t) => [t, []]));
      const unsubscribe = topics.map((topic) => feed.subscribe(topic, (entry) => seen.get(topic)?.push(entry.topic === topic ? entry.seq : -1)));
      await feed.ready();
      applied(await store.commit(event(topics.map((topic) => own(topic, 1)))));
      applied(await store.commit(event([own(trading, 2)])));
      unsubscribe[1]?.(); // one topic's last listener leaving must not silence its siblings
      await feed.ready();
      applied(await store.commit(event([own(trading, 3), own(risk, 2)])));
      await waitFor(() => seen.get(trading)?.length === 3 && seen.get(risk)?.length === 2, 5000, 'live entries of the entity');
      await sleep(50);
      const heads: Record<string, number> = { [trading]: 3, [portfolio]: 1, [risk]: 2, [alerts]: 1, [mobile]: 1 };
      expect(Object.fromEntries(seen)).toEqual({ [trading]: [1, 2, 3], [portfolio]: [1], [risk]: [1, 2], [alerts]: [1], [mobile]: [1] });
      for (const [topic, head] of Object.entries(heads)) {
        const read = await store.readAfter(topic, 0, 10);
        expect({ topic, head: read.headSeq, seqs: read.entries.map((e) => e.seq), topics: [...new Set(read.entries.map((e) => e.topic))] }).toEqual({ topic, head, seqs: Array.from({ length: head }, (_, i) => i + 1), topics: [topic] });
        expect(await store.snapshot(topic)).toMatchObject({ seq: head, state: { last: head, topic } });
      }
      const listed = (await store.topics()).filter((t) => topics.includes(t.topic));
      expect(Object.fromEntries(listed.map((t) => [t.topic, t.headSeq]))).toEqual(heads);
    });

    it('renewEpoch tells live listeners of the topic that it is stale (no entry carries the new epoch)', async () => {
      const { store, feed } = await make();
      applied(await store.commit(event([change('stale-a', 1)])));
      const stale: string[] = [];
      feed.subscribe('stale-a', () => undefined, () => stale.push('stale-a'));
      feed.subscribe('stale-b', () => undefined, () => stale.push('stale-b'));
      await feed.ready();
      const epoch = (await store.snapshot('stale-a'))?.epoch as string;
      await store.renewEpoch('stale-a', epoch);
      await store.renewEpoch('stale-a', epoch); // already renewed: nothing changes, nobody is told
      await waitFor(() => stale.length > 0, 5000, 'the stale notice');
      await sleep(50);
      expect(stale).toEqual(['stale-a']);
    });

    it('renewEpoch gives a topic a new epoch once, keeping seq, state and history', async () => {
      const { store } = await make();
      expect(await store.renewEpoch('none', 'x')).toBe('');
      const [first] = applied(await store.commit(event([change('re', 1)])));
      applied(await store.commit(event([change('re', 2)])));
      const old = first?.epoch as string;
      const renewed = await store.renewEpoch('re', old);
      expect(renewed).not.toBe(old);
      expect(renewed).not.toBe('');
      // A second caller that saw the old epoch changes nothing more.
      expect(await store.renewEpoch('re', old)).toBe(renewed);
      const read = await store.readAfter('re', 0, 10);
      expect({ epoch: read.epoch, head: read.headSeq, seqs: read.entries.map((e) => e.seq) }).toEqual({ epoch: renewed, head: 2, seqs: [1, 2] });
      expect(await store.snapshot('re')).toMatchObject({ epoch: renewed, seq: 2, state: { last: 2 } });
      expect((await store.topics()).find((t) => t.topic === 're')).toMatchObject({ epoch: renewed, headSeq: 2 });
      const [next] = applied(await store.commit(event([change('re', 3)])));
      expect(next).toMatchObject({ epoch: renewed, seq: 3 });
    });

    it('snapshot reflects the head seq and latest state; states() maps present topics only', async () => {
      const { store } = await make();
      expect(await store.snapshot('s')).toBeNull();
      let last: HistoryEntry | undefined;
      for (let i = 1; i <= 7; i++) [last] = applied(await store.commit(event([change('s', i, { px: 100 + i / 8 })])));
      const snap = await store.snapshot('s');
      expect(snap).toEqual({ topic: 's', epoch: last?.epoch, seq: 7, ts: last?.ts, state: { last: 7, px: 100 + 7 / 8 } });
      const states = await store.states(['s', 'missing']);
      expect([...states.keys()]).toEqual(['s']);
      expect(states.get('s')).toEqual({ epoch: last?.epoch, seq: 7, ts: last?.ts, hash: last?.hash, state: { last: 7, px: 100 + 7 / 8 } });
      expect((await store.states([])).size).toBe(0);
    });

    it('round-trips payloads exactly (unicode, slashes, quotes, empty arrays/objects, numbers)', async () => {
      const { store, feed } = await make();
      const seen: HistoryEntry[] = [];
      feed.subscribe('we/ird "topic" é', (e) => seen.push(e));
      await feed.ready();
      const payload = { kind: 'trade', s: 'a/b "q" \\ é € 𝄞 \n\t', empty: [], obj: {}, nested: [[1, 2.5, -0.001, 1e21], { x: null, y: true }], big: 12345678901234 };
      const [entry] = applied(await store.commit(event([{ topic: 'we/ird "topic" é', type: 'alert', payload, state: payload }])));
      expect(entry?.payload).toEqual(payload);
      expect((await store.readAfter('we/ird "topic" é', 0, 1)).entries).toEqual([entry]);
      expect((await store.snapshot('we/ird "topic" é'))?.state).toEqual(payload);
      await waitFor(() => seen.length === 1, 5000, 'live entry');
      expect(seen).toEqual([entry]);
    });

    it('readAfter returns exactly (after, head] in order and honours limit', async () => {
      const { store } = await make();
      const committed: HistoryEntry[] = [];
      for (let i = 1; i <= 30; i++) committed.push(...applied(await store.commit(event([change('r', i)]))));
      const all = await store.readAfter('r', 0, 1000);
      expect(all.headSeq).toBe(30);
      expect(all.firstSeq).toBe(1);
      expect(all.epoch).toBe(committed[0]?.epoch);
      expect(all.entries).toEqual(committed);
      expect((await store.readAfter('r', 10, 1000)).entries.map((e) => e.seq)).toEqual(range(11, 30));
      expect((await store.readAfter('r', 10, 5)).entries.map((e) => e.seq)).toEqual(range(11, 15));
      expect((await store.readAfter('r', 29, 5)).entries.map((e) => e.seq)).toEqual([30]);
      expect((await store.readAfter('r', 30, 5)).entries).toEqual([]);
      expect((await store.readAfter('r', 5, 0)).entries).toEqual([]);
      expect(await store.readAfter('nope', 0, 10)).toEqual({ epoch: '', headSeq: 0, firstSeq: 1, entries: [] });
    });

    it('trims history to at least maxLen newest entries and reports firstSeq', async () => {
      const maxLen = 50;
      const { store } = await make(maxLen);
      const total = 1000;
      for (let i = 1; i <= total; i++) applied(await store.commit(event([change('trim', i)])));
      const read = await store.readAfter('trim', 0, 10 * total);
      expect(read.headSeq).toBe(total);
      expect(read.firstSeq).toBeGreaterThan(1);
      expect(total - read.firstSeq + 1).toBeGreaterThanOrEqual(maxLen);
      expect(read.entries.length).toBeLessThan(total / 2);
      expect(read.entries.map((e) => e.seq)).toEqual(range(read.firstSeq, total));
      const tail = await store.readAfter('trim', total - maxLen, maxLen);
      expect(tail.entries.map((e) => e.seq)).toEqual(range(total - maxLen + 1, total));
      expect((await store.snapshot('trim'))?.seq).toBe(total);
    });

    it('reset starts a new epoch and restarts seq at 1', async () => {
      const { store } = await make();
      const [e, other] = entityTopics();
      const [first] = applied(await store.commit(event([change(e, 1)])));
      applied(await store.commit(event([change(e, 2), change(other, 1)])));
      await store.reset(e);
      expect(await store.snapshot(e)).toBeNull();
      expect((await store.topics()).map((t) => t.topic)).toEqual([other]);
      const [again] = applied(await store.commit(event([change(e, 3)])));
      expect(again?.seq).toBe(1);
      expect(again?.epoch).not.toBe(first?.epoch);
      const read = await store.readAfter(e, 0, 10);
      expect(read).toMatchObject({ epoch: again?.epoch, headSeq: 1, firstSeq: 1 });
      expect(read.entries).toEqual([again]);
      expect((await store.snapshot(e))?.state).toEqual({ last: 3 });
      expect((await store.snapshot(other))?.seq).toBe(1);
      await store.reset('never-existed');
    });

    it('topics() lists every topic with its epoch, head seq and update time', async () => {
      const { store } = await make();
      const [t1, t2] = entityTopics();
      expect(await store.topics()).toEqual([]);
      const entries = [
        ...applied(await store.commit(event([change(t1, 1), change(t2, 1)]))),
        ...applied(await store.commit(event([change(t1, 2)]))),
      ];
      const topics = (await store.topics()).sort((a, b) => (a.topic === t1 ? -1 : b.topic === t1 ? 1 : 0));
      expect(topics).toEqual([
        { topic: t1, epoch: entries[2]?.epoch, headSeq: 2, updatedAt: entries[2]?.ts },
        { topic: t2, epoch: entries[1]?.epoch, headSeq: 1, updatedAt: entries[1]?.ts },
      ]);
    });

    it('live feed delivers every committed entry of a subscribed topic, in order, and stops after unsubscribe', async () => {
      const { store, feed } = await make();
      const [liveA, liveB, liveC] = entityTopics();
      const onA: HistoryEntry[] = [];
      const onA2: HistoryEntry[] = [];
      const onB: HistoryEntry[] = [];
      const offA = feed.subscribe(liveA, (e) => onA.push(e));
      const offA2 = feed.subscribe(liveA, (e) => onA2.push(e));
      feed.subscribe(liveB, (e) => onB.push(e));
      await feed.ready();
      const committed: HistoryEntry[] = [];
      // Concurrent commits: delivery order must still be seq order.
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) => store.commit(event([change(liveA, i), ...(i % 3 === 0 ? [change(liveB, i)] : []), change(liveC, i)]))),
      );
      for (const r of results) committed.push(...applied(r));
      const expectA = committed.filter((e) => e.topic === liveA).sort((x, y) => x.seq - y.seq);
      const expectB = committed.filter((e) => e.topic === liveB).sort((x, y) => x.seq - y.seq);
      await waitFor(() => onA.length >= 300 && onA2.length >= 300 && onB.length >= 100, 5000, 'live entries');
      expect(onA).toEqual(expectA);
      expect(onA2).toEqual(expectA);
      expect(onB).toEqual(expectB);
      expect(onA.map((e) => e.seq)).toEqual(range(1, 300));

      offA();
      applied(await store.commit(event([change(liveA, 1000)])));
      await waitFor(() => onA2.length === 301, 5000, 'entry for the remaining listener');
      offA2();
      offA2();
      await feed.ready();
      applied(await store.commit(event([change(liveA, 1001), change(liveB, 1001)])));
      await waitFor(() => onB.length === 101, 5000, 'live-b entry');
      expect(onA.length).toBe(300);
      expect(onA2.length).toBe(301);

      // Resubscribing after the last listener left works again.
      const again: HistoryEntry[] = [];
      feed.subscribe(liveA, (e) => again.push(e));
      await feed.ready();
      const [next] = applied(await store.commit(event([change(liveA, 1002)])));
      await waitFor(() => again.length === 1, 5000, 'entry after resubscribe');
      expect(again).toEqual([next]);
    });

    it('concurrent commits (50 callers x 200 events) produce contiguous seqs with no duplicates', async () => {
      const { store } = await make(20_000);
      const [hot, ...siblings] = entityTopics();
      const topicsOf = (caller: number, i: number): string[] => (i % 10 === 0 ? [hot, siblings[caller % 4] as string] : [hot]);
      const assigned = await Promise.all(
        Array.from({ length: 50 }, async (_, caller) => {
          const mine: HistoryEntry[] = [];
          for (let i = 0; i < 200; i++) {
            mine.push(...applied(await store.commit(event(topicsOf(caller, i).map((t) => change(t, i)), { stream: `conc/${caller}`, offset: String(i) }))));
          }
          return mine;
        }),
      );
      const byTopic = new Map<string, number[]>();
      for (const entry of assigned.flat()) {
        const seqs = byTopic.get(entry.topic) ?? [];
        seqs.push(entry.seq);
        byTopic.set(entry.topic, seqs);
      }
      expect(byTopic.get(hot)?.length).toBe(10_000);
      for (const [topic, seqs] of byTopic) {
        expect(seqs.sort((a, b) => a - b)).toEqual(range(1, seqs.length));
        const read = await store.readAfter(topic, 0, 20_000);
        expect(read.headSeq).toBe(seqs.length);
        expect(read.entries.map((e) => e.seq)).toEqual(range(1, seqs.length));
      }
      // Each caller's own commits got increasing seqs (its commits are sequential).
      for (const mine of assigned) {
        const seqs = mine.filter((e) => e.topic === hot).map((e) => e.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      }
      expect(await resumeOffset(store, 'conc/7')).toBe('199');
    }, 60_000);
  });
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
