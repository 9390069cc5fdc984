import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { recover, type RecoveryRequest, type RecoveryResult, type RecoverySource } from '../../src/gateway/recovery.js';
import { TopicFeed } from '../../src/gateway/topic-feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryTopicStore } from '../../src/store/memory-store.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';

/**
 * The catch-up on its own, against the in-memory store and a real TopicFeed (the store is its own live
 * feed, delivering synchronously inside commit): what is sent directly, whether a snapshot comes and how
 * it is marked, and that directly sent plus live entries are contiguous, with no gap and no duplicate.
 */

const TOPIC = 'prices.US0378331005';

interface World {
  store: MemoryTopicStore;
  feed: TopicFeed;
  commit(count: number): Promise<void>;
}

/** When a step of the catch-up runs, the case may change the world first or right after. */
interface Hooks {
  beforeHistoryRead?: (world: World) => Promise<void>;
  afterHistoryRead?: (world: World) => Promise<void>;
  /** While catch-up waits for the feed to reach a seq (the timeout is shortened to 50 ms). */
  whileWaiting?: (world: World) => Promise<void>;
}

async function world(opts: { before: number; maxLen?: number; ringSize?: number; afterFeed?: number }): Promise<World> {
  const store = new MemoryTopicStore(opts.maxLen ?? 10_000);
  let n = 0;
  const commit = async (count: number) => {
    for (let i = 0; i < count; i++) {
      n++;
      await store.commit({ eventId: `e${n}`, eventTs: new Date().toISOString(), changes: [{ topic: TOPIC, type: 'delta', payload: { kind: 'l1', n }, state: { n } }] });
    }
  };
  await commit(opts.before);
  // Entries committed before the feed starts are only in the store's history, later ones in the ring too.
  const feed = new TopicFeed(TOPIC, store, store, silentLogger, opts.ringSize);
  await feed.ready;
  const w = { store, feed, commit };
  await commit(opts.afterFeed ?? 0);
  return w;
}

/** The feed seen through the hooks of a case. */
function source(w: World, hooks: Hooks): RecoverySource {
  const { feed } = w;
  let reads = 0;
  return {
    topic: feed.topic,
    get epoch() {
      return feed.epoch;
    },
    get head() {
      return feed.head;
    },
    recentAfter: (seq) => feed.recentAfter(seq),
    snapshot: () => feed.snapshot(),
    async historyAfter(seq, limit) {
      const first = reads++ === 0;
      if (first) await hooks.beforeHistoryRead?.(w);
      const read = await feed.historyAfter(seq, limit);
      if (first) await hooks.afterHistoryRead?.(w);
      return read;
    },
    async waitFor(seq) {
      const reached = feed.waitFor(seq, 50);
      await hooks.whileWaiting?.(w);
      return reached;
    },
  };
}

interface Outcome {
  result: RecoveryResult | 'superseded';
  snapshot?: { seq: number; epoch: string; marks: JsonObject };
  /** Seqs sent directly, in order. */
  direct: number[];
  /** Seqs the feed handed out after the switch to live. */
  live: number[];
}

async function run(w: World, request: RecoveryRequest | ((w: World) => RecoveryRequest), hooks: Hooks = {}, current: () => boolean = () => true): Promise<Outcome> {
  const outcome: Omit<Outcome, 'result'> = { direct: [], live: [] };
  let joined = false;
  w.feed.addOutlet({
    deliver: (entry: HistoryEntry) => joined && outcome.live.push(entry.seq),
    reset: () => {},
  });
  const result = await recover(source(w, hooks), typeof request === 'function' ? request(w) : request, {
    current,
    snapshot: (snapshot, marks) => (outcome.snapshot = { seq: snapshot.seq, epoch: snapshot.epoch, marks }),
    entries: (entries) => outcome.direct.push(...entries.map((e) => e.seq)),
    live: () => (joined = true),
  });
  return { result, ...outcome };
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('recover', () => {
  it.each<{ name: string; before: number; afterFeed?: number; maxLen?: number; ringSize?: number; request: (w: World) => RecoveryRequest; snapshot?: { seq: number; marks: JsonObject }; direct: number[]; result: Partial<RecoveryResult> }>([
    { name: 'first subscribe: a snapshot at the head, nothing else', before: 5, request: () => ({}), snapshot: { seq: 5, marks: {} }, direct: [], result: { snapshot_seq: 5, resync: false } },
    { name: 'first subscribe on a topic without entries: an empty snapshot at seq 0', before: 0, request: () => ({}), snapshot: { seq: 0, marks: {} }, direct: [], result: { snapshot_seq: 0, resync: false } },
    { name: 'resume within the ring', before: 0, afterFeed: 10, request: (w) => ({ resumeFrom: 4, epoch: w.feed.epoch }), direct: range(5, 10), result: { resumed_from: 4, resync: false } },
    { name: 'resume from history only (the feed started later)', before: 10, request: (w) => ({ resumeFrom: 3, epoch: w.feed.epoch }), direct: range(4, 10), result: { resumed_from: 3, resync: false } },
    { name: 'resume over several history pages, then the ring', before: 4500, afterFeed: 300, ringSize: 4, request: (w) => ({ resumeFrom: 10, epoch: w.feed.epoch }), direct: range(11, 4800), result: { resumed_from: 10 } },
    { name: 'resume without an epoch continues', before: 8, request: () => ({ resumeFrom: 2 }), direct: range(3, 8), result: { resumed_from: 2, resync: false } },
    { name: 'resume with the empty epoch (a snapshot before the first entry) continues', before: 8, request: () => ({ resumeFrom: 0, epoch: '' }), direct: range(1, 8), result: { resumed_from: 0 } },
    { name: 'resume at the head: nothing to send', before: 6, request: (w) => ({ resumeFrom: 6, epoch: w.feed.epoch }), direct: [], result: { resumed_from: 6 } },
    { name: 'resume naming another epoch: a re-sync snapshot', before: 6, request: () => ({ resumeFrom: 2, epoch: 'another' }), snapshot: { seq: 6, marks: { resync: true } }, direct: [], result: { snapshot_seq: 6, resync: true } },
    { name: 'resume from before the trimmed history: a re-sync snapshot', before: 40, maxLen: 10, request: (w) => ({ resumeFrom: 2, epoch: w.feed.epoch }), snapshot: { seq: 40, marks: { resync: true } }, direct: [], result: { snapshot_seq: 40, resync: true } },
    { name: 'a forced re-sync ignores the resume', before: 6, request: (w) => ({ resumeFrom: 2, epoch: w.feed.epoch, resync: true }), snapshot: { seq: 6, marks: { resync: true } }, direct: [], result: { snapshot_seq: 6, resync: true } },
    { name: 'conflation after a pause: one snapshot marking the skipped range', before: 0, afterFeed: 10, request: () => ({ resumeFrom: 1, conflatedAfter: 3 }), snapshot: { seq: 10, marks: { conflated: { from: 4, to: 10 } } }, direct: [], result: { snapshot_seq: 10, resync: false } },
    { name: 'conflation that skipped nothing sends nothing', before: 0, afterFeed: 10, request: () => ({ conflatedAfter: 10 }), direct: [], result: { snapshot_seq: 10, resync: false } },
  ])('$name', async (c) => {
    const w = await world(c);
    const out = await run(w, c.request);
    expect(out.result).toMatchObject({ ...c.result, epoch: w.feed.epoch });
    expect(out.snapshot && { seq: out.snapshot.seq, marks: out.snapshot.marks }).toEqual(c.snapshot);
    expect(out.direct).toEqual(c.direct);
    await w.commit(3);
    expect(out.live).toEqual(range(w.feed.head - 2, w.feed.head));
  });

  it.each<[string, Hooks]>([
    ['committed before the history read', { beforeHistoryRead: (w) => w.commit(5) }],
    ['committed after the history read', { afterHistoryRead: (w) => w.commit(5) }],
  ])('entries %s: sent once, directly or live, none missing', async (_name, hooks) => {
    const w = await world({ before: 10 });
    const out = await run(w, (x) => ({ resumeFrom: 2, epoch: x.feed.epoch }), hooks);
    await w.commit(3);
    expect([...out.direct, ...out.live]).toEqual(range(3, 18));
    expect(out.live.length).toBeGreaterThan(0);
  });

  it('an epoch change in the middle of the catch-up ends in a re-sync snapshot of the new epoch', async () => {
    const w = await world({ before: 10 });
    const old = w.feed.epoch;
    const out = await run(w, { resumeFrom: 2, epoch: old }, { beforeHistoryRead: async (x) => void (await x.store.renewEpoch(TOPIC, old)) });
    expect(w.feed.epoch).not.toBe(old);
    expect(out.result).toEqual({ snapshot_seq: 10, resync: true, epoch: w.feed.epoch });
    expect(out.snapshot).toEqual({ seq: 10, epoch: w.feed.epoch, marks: { resync: true } });
    expect(out.direct).toEqual([]);
  });

  it('a resume beyond the head waits for the feed, and continues when the seq arrives in time', async () => {
    const w = await world({ before: 5 });
    const out = await run(w, (x) => ({ resumeFrom: 7, epoch: x.feed.epoch }), { whileWaiting: (x) => x.commit(3) });
    expect(out.result).toMatchObject({ resumed_from: 7, resync: false });
    expect(out.direct).toEqual([8]);
  });

  it('a resume beyond the head that the feed never reaches is a re-sync', async () => {
    const w = await world({ before: 5 });
    const out = await run(w, (x) => ({ resumeFrom: 9, epoch: x.feed.epoch }));
    expect(out.result).toMatchObject({ snapshot_seq: 5, resync: true });
    expect(out.snapshot?.marks).toEqual({ resync: true });
  });

  it('a superseded catch-up stops without sending or going live', async () => {
    const w = await world({ before: 10 });
    let checks = 0;
    const out = await run(w, (x) => ({ resumeFrom: 2, epoch: x.feed.epoch }), {}, () => checks++ === 0);
    expect(out.result).toBe('superseded');
    expect(out.direct).toEqual([]);
    await w.commit(2);
    expect(out.live).toEqual([]);
  });
});
