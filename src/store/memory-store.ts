import { randomUUID } from 'node:crypto';
import { DEFAULTS } from '../config/config.js';
import type { JsonObject } from '../domain/json.js';
import {
  commitTime,
  HeadMismatch,
  SourceOffsetMismatch,
  type CommitInput,
  type CommitResult,
  type HistoryEntry,
  type HistoryRead,
  type LiveFeed,
  type Snapshot,
  type TopicHead,
  type TopicInfo,
  type TopicStore,
  type Unsubscribe,
} from './topic-store.js';

interface TopicRecord {
  epoch: string;
  headSeq: number;
  /** Ring of the newest entries, oldest first; trimmed to `maxLen`. */
  history: HistoryEntry[];
  state: JsonObject;
  updatedAt: string;
}

/**
 * Embedded-mode store: everything in process memory. Commits are synchronous under the hood, so
 * they are trivially atomic; live listeners are called synchronously inside `commit`, in seq order.
 */
export class MemoryTopicStore implements TopicStore, LiveFeed {
  private readonly topicsByName = new Map<string, TopicRecord>();
  private readonly listeners = new Map<string, Set<{ onEntry: (entry: HistoryEntry) => void; onStale?: () => void }>>();
  private readonly seenEvents = new Set<string>();
  private readonly offsets = new Map<string, bigint>();

  constructor(
    /** History entries kept per topic (HISTORY_MAX_LEN). */
    private readonly maxLen: number = DEFAULTS.HISTORY_MAX_LEN,
    /** How many event ids are remembered for de-duplication (DEDUP_WINDOW). */
    private readonly dedupWindow: number = DEFAULTS.DEDUP_WINDOW,
  ) {}

  async commit(input: CommitInput): Promise<CommitResult> {
    return this.commitSync(input);
  }

  commitSync(input: CommitInput): CommitResult {
    const committedAt = commitTime(input.source); // throws on a bad ts, before any write
    // Expectations first, before any write (the same order as commit.lua).
    if (input.source && input.source.after !== undefined) {
      const stored = this.offsets.get(input.source.stream);
      const expected = input.source.after === null ? undefined : BigInt(input.source.after);
      if (stored !== expected) throw new SourceOffsetMismatch(input.source.stream, input.source.after, stored?.toString() ?? null);
    }
    for (const [topic, expected] of input.expectedHeads ?? []) {
      const head = this.topicsByName.get(topic)?.headSeq ?? 0;
      if (head !== expected) throw new HeadMismatch(topic, expected, head);
    }
    if (input.source) {
      const applied = this.offsets.get(input.source.stream);
      if (applied !== undefined && BigInt(input.source.offset) <= applied) return { applied: false, reason: 'already_applied_offset' };
    }
    // The offset is consumed even when the event id is a duplicate, so consumption resumes past it.
    if (input.source) this.offsets.set(input.source.stream, BigInt(input.source.offset));
    if (this.seenEvents.has(input.eventId)) return { applied: false, reason: 'duplicate_event' };
    this.rememberEvent(input.eventId);

    const entries = input.changes.map((change) => {
      const record = this.record(change.topic);
      // Canonical ISO-8601 strings order as text; the previous entry is the last of the ring.
      const previous = record.history.at(-1)?.ts ?? '';
      const ts = previous > committedAt ? previous : committedAt;
      const entry: HistoryEntry = {
        topic: change.topic,
        epoch: record.epoch,
        seq: ++record.headSeq,
        type: change.type,
        ts,
        event_ts: input.eventTs,
        event_id: input.eventId,
        payload: change.payload,
      };
      record.history.push(entry);
      // Trim in chunks so the array is not shifted on every append.
      if (record.history.length > this.maxLen + Math.max(16, this.maxLen >> 4)) record.history.splice(0, record.history.length - this.maxLen);
      record.state = change.state;
      record.updatedAt = ts;
      return entry;
    });
    for (const entry of entries) for (const listener of this.listeners.get(entry.topic) ?? []) listener.onEntry(entry);
    return { applied: true, entries };
  }

  async snapshot(topic: string): Promise<Snapshot | null> {
    const record = this.topicsByName.get(topic);
    if (!record) return null;
    return { topic, epoch: record.epoch, seq: record.headSeq, ts: record.updatedAt, state: record.state };
  }

  async states(topics: string[]): Promise<Map<string, TopicHead>> {
    const out = new Map<string, TopicHead>();
    for (const topic of topics) {
      const record = this.topicsByName.get(topic);
      if (record) out.set(topic, { epoch: record.epoch, seq: record.headSeq, state: record.state });
    }
    return out;
  }

  async readAfter(topic: string, afterSeq: number, limit: number): Promise<HistoryRead> {
    const record = this.topicsByName.get(topic);
    if (!record) return { epoch: '', headSeq: 0, firstSeq: 1, entries: [] };
    const history = record.history;
    const firstSeq = history.length > 0 ? (history[0] as HistoryEntry).seq : record.headSeq + 1;
    // Seqs in the ring are contiguous, so the position of afterSeq+1 is arithmetic.
    const start = Math.max(0, afterSeq + 1 - firstSeq);
    return { epoch: record.epoch, headSeq: record.headSeq, firstSeq, entries: history.slice(start, start + limit) };
  }

  async topics(): Promise<TopicInfo[]> {
    return [...this.topicsByName].map(([topic, r]) => ({ topic, epoch: r.epoch, headSeq: r.headSeq, updatedAt: r.updatedAt }));
  }

  async sourceOffset(stream: string): Promise<string | null> {
    return this.offsets.get(stream)?.toString() ?? null;
  }

  async reset(topic: string): Promise<void> {
    this.topicsByName.delete(topic);
  }

  async renewEpoch(topic: string, epoch: string): Promise<string> {
    const record = this.topicsByName.get(topic);
    if (!record) return '';
    if (record.epoch === epoch) {
      record.epoch = newEpoch();
      for (const listener of this.listeners.get(topic) ?? []) listener.onStale?.();
    }
    return record.epoch;
  }

  subscribe(topic: string, onEntry: (entry: HistoryEntry) => void, onStale?: () => void): Unsubscribe {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    const listener = { onEntry, ...(onStale ? { onStale } : {}) };
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(topic);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private record(topic: string): TopicRecord {
    let record = this.topicsByName.get(topic);
    if (!record) {
      record = { epoch: newEpoch(), headSeq: 0, history: [], state: {}, updatedAt: new Date().toISOString() };
      this.topicsByName.set(topic, record);
    }
    return record;
  }

  private rememberEvent(eventId: string): void {
    this.seenEvents.add(eventId);
    if (this.seenEvents.size > this.dedupWindow) {
      // Sets iterate in insertion order: drop the oldest id.
      const oldest = this.seenEvents.values().next().value;
      if (oldest !== undefined) this.seenEvents.delete(oldest);
    }
  }
}

function newEpoch(): string {
  return randomUUID().slice(0, 8);
}
