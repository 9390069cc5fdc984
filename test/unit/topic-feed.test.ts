import { describe, expect, it } from 'vitest';
import { TopicFeed, type Outlet } from '../../src/gateway/topic-feed.js';
import { silentLogger } from '../../src/observability/logger.js';
import { MemoryTopicStore } from '../../src/store/memory-store.js';
import type { HistoryEntry, LiveFeed, Unsubscribe } from '../../src/store/topic-store.js';

/**
 * TopicFeed against the real in-memory store, with the live notifications in the test's hands: the
 * store's own feed never skips or repeats, so gap filling and rewrite detection would otherwise never run.
 */
class ScriptedLiveFeed implements LiveFeed {
  private listener: ((entry: HistoryEntry) => void) | undefined;
  private stale: (() => void) | undefined;
  subscribe(_topic: string, onEntry: (entry: HistoryEntry) => void, onStale?: () => void): Unsubscribe {
    this.listener = onEntry;
    this.stale = onStale;
    return () => (this.listener = undefined);
  }
  /** The feed's notice that the store changed in a way no entry shows (reconnect, renewed epoch). */
  notifyStale(): void {
    this.stale?.();
  }
  emit(...entries: HistoryEntry[]): void {
    for (const entry of entries) this.listener?.(entry);
  }
  async ready(): Promise<void> {}
  async close(): Promise<void> {}
}

class RecordingOutlet implements Outlet {
  readonly seqs: number[] = [];
  resets = 0;
  deliver(entry: HistoryEntry): void {
    this.seqs.push(entry.seq);
  }
  reset(): void {
    this.resets++;
  }
}

const TOPIC = 'prices.US0378331005';

async function setup(maxLen = 1000) {
  const store = new MemoryTopicStore(maxLen);
  const live = new ScriptedLiveFeed();
  const feed = new TopicFeed(TOPIC, store, live, silentLogger);
  await feed.ready;
  const outlet = new RecordingOutlet();
  feed.addOutlet(outlet);
  let n = 0;
  const commit = async (count: number): Promise<HistoryEntry[]> => {
    const out: HistoryEntry[] = [];
    for (let i = 0; i < count; i++) {
      const result = await store.commit({ eventId: `e${++n}`, eventTs: new Date().toISOString(), changes: [{ topic: TOPIC, type: 'delta', payload: { kind: 'l1', n }, state: { n } }] });
      if (!result.applied) throw new Error('not applied');
      out.push(...result.entries);
    }
    return out;
  };
  return { store, live, feed, outlet, commit };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('TopicFeed', () => {
  it('after a renewal it missed, serves none of the older epoch\'s entries (kept in history) as the new one\'s', async () => {
    const { store, live, outlet, commit, feed } = await setup();
    live.emit(...(await commit(2)));
    await settle();
    const old = feed.epoch;
    const renewed = await store.renewEpoch(TOPIC, old); // its stale notice lost: no live.notifyStale()
    const [third] = await commit(1);
    expect(third?.epoch).toBe(renewed);
    live.emit(third as HistoryEntry);
    await settle();
    expect({ epoch: feed.epoch, head: feed.head, seqs: outlet.seqs }).toEqual({ epoch: renewed, head: 3, seqs: [1, 2, 3] });
    expect(outlet.resets).toBeGreaterThan(0);
    // A stale notice now finds the head entry of this epoch: nothing to reset.
    const resets = outlet.resets;
    live.notifyStale();
    await settle();
    expect({ epoch: feed.epoch, resets: outlet.resets }).toEqual({ epoch: renewed, resets });
  });

  it('fills a skipped seq from history before handing out anything after it', async () => {
    const { live, outlet, commit, feed } = await setup();
    const entries = await commit(6);
    live.emit(...entries.filter((e) => e.seq !== 3 && e.seq !== 5));
    await settle();
    expect(outlet.seqs).toEqual(range(1, 6));
    expect(outlet.resets).toBe(0);
    expect(feed.head).toBe(6);
  });

  it('forces a re-sync when history no longer holds the gap', async () => {
    const { live, outlet, commit, feed } = await setup(10);
    const entries = await commit(60); // the store keeps only the newest ~10..26
    live.emit(entries[0] as HistoryEntry, entries[59] as HistoryEntry);
    await settle();
    expect(outlet.seqs).toEqual([1, 60]);
    expect(outlet.resets).toBe(1);
    expect(feed.head).toBe(60);
  });

  it('drops a repeated entry identical to the one it handed out', async () => {
    const { live, outlet, commit, feed, store } = await setup();
    const entries = await commit(3);
    live.emit(...entries);
    const epoch = feed.epoch;
    live.emit(entries[1] as HistoryEntry, { ...(entries[2] as HistoryEntry), ts: 'rebuilt later' });
    await settle();
    expect(outlet.seqs).toEqual([1, 2, 3]);
    expect(outlet.resets).toBe(0);
    expect((await store.snapshot(TOPIC))?.epoch).toBe(epoch);
  });

  it('renews the epoch when a seq it handed out comes back with other content', async () => {
    const { live, outlet, commit, feed, store } = await setup();
    const entries = await commit(3);
    live.emit(...entries);
    const epoch = feed.epoch;
    // The store came back older and numbered another event 2 under the same epoch.
    live.emit({ ...(entries[1] as HistoryEntry), event_id: 'another-event', payload: { kind: 'l1', n: 99 } });
    await settle();
    const renewed = (await store.snapshot(TOPIC))?.epoch;
    expect(renewed).not.toBe(epoch);
    expect(feed.epoch).toBe(renewed);
    expect(outlet.resets).toBe(1);
    // Later entries flow under the new epoch, contiguous from the store's head.
    live.emit(...(await commit(2)));
    await settle();
    expect(outlet.seqs).toEqual([1, 2, 3, 4, 5]);
  });

  it('on a stale notice re-reads the store: entries lost at the end of a burst, a renewed epoch', async () => {
    const { live, outlet, commit, feed, store } = await setup();
    const entries = await commit(5);
    live.emit(...entries.slice(0, 2)); // 3..5 lost with the connection, and nothing after them
    live.notifyStale();
    await settle();
    expect(outlet.seqs).toEqual([1, 2, 3, 4, 5]);
    const epoch = feed.epoch;
    const renewed = await store.renewEpoch(TOPIC, epoch); // e.g. by another gateway: no entry says so
    live.notifyStale();
    await settle();
    expect(feed.epoch).toBe(renewed);
    expect(outlet.resets).toBe(1);
  });

  it('treats a handed-out seq that left its ring as rewritten (cannot compare: re-sync is the safe side)', async () => {
    const store = new MemoryTopicStore(100_000);
    const live = new ScriptedLiveFeed();
    const feed = new TopicFeed(TOPIC, store, live, silentLogger, 4);
    await feed.ready;
    const outlet = new RecordingOutlet();
    feed.addOutlet(outlet);
    const entries: HistoryEntry[] = [];
    for (let i = 1; i <= 300; i++) {
      const result = await store.commit({ eventId: `r${i}`, eventTs: '', changes: [{ topic: TOPIC, type: 'delta', payload: { kind: 'l1', i }, state: {} }] });
      if (result.applied) entries.push(...result.entries);
    }
    live.emit(...entries);
    const epoch = feed.epoch;
    live.emit(entries[0] as HistoryEntry);
    await settle();
    expect(feed.epoch).not.toBe(epoch);
    expect(outlet.resets).toBe(1);
  });
});
