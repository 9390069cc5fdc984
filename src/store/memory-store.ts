import { randomUUID } from 'node:crypto';
import { DEFAULTS } from '../config/config.js';
import type { JsonObject } from '../domain/json.js';
import { chainEntries, genesisHash } from './chain.js';
import {
  commitEntity,
  commitTime,
  HeadMismatch,
  runEntity,
  SourceOffsetMismatch,
  type CommitInput,
  type ChainHead,
  type CommitResult,
  type HistoryEntry,
  type HistoryRead,
  type LiveFeed,
  type SignedCheckpoint,
  type Snapshot,
  type TopicChange,
  type TopicHead,
  type TopicInfo,
  type TopicStore,
  type RunResult,
  type Unsubscribe,
} from './topic-store.js';

interface TopicRecord {
  epoch: string;
  headSeq: number;
  /** Ring of the newest entries, oldest first; trimmed to `maxLen`. */
  history: HistoryEntry[];
  state: JsonObject;
  /** The newest entry's ts. */
  updatedAt: string;
  /** The chain head's hash: the newest entry's, or the epoch's hash(0) after a renewal. */
  hash: string;
}

/**
 * Embedded-mode store: everything in process memory. Commits are synchronous under the hood, so
 * they are trivially atomic; live listeners are called synchronously inside `commit`, in seq order.
 */
export class MemoryTopicStore implements TopicStore, LiveFeed {
  private readonly topicsByName = new Map<string, TopicRecord>();
  private readonly listeners = new Map<string, Set<{ onEntry: (entry: HistoryEntry) => void; onStale?: () => void }>>();
  /** Per entity (commitEntity), as on Redis: its newest event ids, and per source stream its last applied offset. */
  private readonly seenEvents = new Map<string, Set<string>>();
  private readonly offsets = new Map<string, Map<string, bigint>>();
  private readonly auditCheckpointsByTopic = new Map<string, SignedCheckpoint[]>();

  constructor(
    /** History entries kept per topic (HISTORY_MAX_LEN). */
    private readonly maxLen: number = DEFAULTS.HISTORY_MAX_LEN,
    /** How many event ids are remembered for de-duplication (DEDUP_WINDOW). */
    private readonly dedupWindow: number = DEFAULTS.DEDUP_WINDOW,
  ) {}

  async commit(input: CommitInput): Promise<CommitResult> {
    return this.commitSync(input);
  }

  /** One synchronous pass, so nothing interleaves: each input as `commit` right after the ones before it. */
  async commitRun(inputs: readonly CommitInput[]): Promise<RunResult> {
    runEntity(inputs);
    const results: CommitResult[] = [];
    for (const input of inputs) {
      try {
        const result = this.commitSync(input);
        results.push(result);
        if (!result.applied) break;
      } catch (err) {
        if (err instanceof SourceOffsetMismatch || err instanceof HeadMismatch) return { results, refused: err };
        throw err;
      }
    }
    return { results };
  }

  commitSync(input: CommitInput): CommitResult {
    const committedAt = commitTime(input.source); // throws on a bad ts, before any write
    const entity = commitEntity(input);
    const offsets = this.offsets.get(entity) ?? new Map<string, bigint>();
    // Expectations first, before any write (the same order as commit.lua).
    if (input.source && input.source.after !== undefined) {
      const stored = offsets.get(input.source.stream);
      const expected = input.source.after === null ? undefined : BigInt(input.source.after);
      if (stored !== expected) throw new SourceOffsetMismatch(input.source.stream, input.source.after, stored?.toString() ?? null);
    }
    for (const [topic, expected] of input.expectedHeads ?? []) {
      const head = this.head(topic);
      if (!sameHead(head, expected)) throw new HeadMismatch(topic, expected?.seq ?? 0, head?.seq ?? 0);
    }
    if (input.source) {
      const applied = offsets.get(input.source.stream);
      if (applied !== undefined && BigInt(input.source.offset) <= applied) return { applied: false, reason: 'already_applied_offset' };
      // The offset is consumed even when the event id is a duplicate, so consumption resumes past it.
      this.offsets.set(entity, offsets.set(input.source.stream, BigInt(input.source.offset)));
    }
    const seen = this.seenEvents.get(entity) ?? new Set<string>();
    if (seen.has(input.eventId)) return { applied: false, reason: 'duplicate_event' };
    this.seenEvents.set(entity, this.remember(seen, input.eventId));

    // Synchronous from the check to here: the heads just compared are the ones chained onto.
    const heads = new Map(input.changes.map((change) => [change.topic, this.head(change.topic)]));
    const entries = chainEntries({ eventId: input.eventId, eventTs: input.eventTs, committedAt, changes: input.changes }, heads, newEpoch);
    entries.forEach((entry, i) => {
      let record = this.topicsByName.get(entry.topic);
      if (!record) this.topicsByName.set(entry.topic, (record = { epoch: entry.epoch, headSeq: 0, history: [], state: {}, updatedAt: entry.ts, hash: '' }));
      record.history.push(entry);
      // Trim in chunks so the array is not shifted on every append.
      if (record.history.length > this.maxLen + Math.max(16, this.maxLen >> 4)) record.history.splice(0, record.history.length - this.maxLen);
      record.headSeq = entry.seq;
      record.hash = entry.hash;
      record.state = (input.changes[i] as TopicChange).state;
      record.updatedAt = entry.ts;
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
      if (record) out.set(topic, { epoch: record.epoch, seq: record.headSeq, ts: record.updatedAt, hash: record.hash, state: record.state });
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

  async sourceOffsets(streams: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, bigint>();
    for (const offsets of this.offsets.values()) {
      for (const stream of streams) {
        const offset = offsets.get(stream);
        const highest = out.get(stream);
        if (offset !== undefined && (highest === undefined || offset > highest)) out.set(stream, offset);
      }
    }
    return new Map([...out].map(([stream, offset]) => [stream, offset.toString()]));
  }

  async appliedOffset(entity: string, stream: string): Promise<string | null> {
    return this.offsets.get(entity)?.get(stream)?.toString() ?? null;
  }

  async reset(topic: string): Promise<void> {
    this.topicsByName.delete(topic);
  }

  async renewEpoch(topic: string, epoch: string): Promise<string> {
    const record = this.topicsByName.get(topic);
    if (!record) return '';
    if (record.epoch === epoch) {
      record.epoch = newEpoch();
      record.hash = genesisHash(topic, record.epoch);
      for (const listener of this.listeners.get(topic) ?? []) listener.onStale?.();
    }
    return record.epoch;
  }

  async appendAuditCheckpoint(checkpoint: SignedCheckpoint): Promise<void> {
    let list = this.auditCheckpointsByTopic.get(checkpoint.topic);
    if (!list) this.auditCheckpointsByTopic.set(checkpoint.topic, (list = []));
    list.push(checkpoint);
    // Kept as long as the history they can be checked against (HISTORY_MAX_LEN).
    if (list.length > this.maxLen) list.shift();
  }

  async auditCheckpoints(topic: string): Promise<SignedCheckpoint[]> {
    return [...(this.auditCheckpointsByTopic.get(topic) ?? [])];
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

  /** Listening from the subscribe call on: nothing to wait for. */
  async ready(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private head(topic: string): ChainHead | null {
    const record = this.topicsByName.get(topic);
    return record ? { epoch: record.epoch, seq: record.headSeq, ts: record.updatedAt, hash: record.hash } : null;
  }

  /** Adds an id to an entity's window, dropping its oldest beyond `dedupWindow`. */
  private remember(seen: Set<string>, eventId: string): Set<string> {
    seen.add(eventId);
    if (seen.size > this.dedupWindow) {
      // Sets iterate in insertion order: drop the oldest id.
      const oldest = seen.values().next().value;
      if (oldest !== undefined) seen.delete(oldest);
    }
    return seen;
  }
}

/** Whether a stored head is the one a committer expects (null: no topic). */
function sameHead(stored: ChainHead | null, expected: ChainHead | null): boolean {
  if (stored === null || expected === null) return stored === expected;
  return stored.seq === expected.seq && stored.epoch === expected.epoch && stored.hash === expected.hash;
}

function newEpoch(): string {
  return randomUUID().slice(0, 8);
}
