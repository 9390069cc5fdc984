import type { DomainEvent } from '../domain/events.js';
import type { JsonObject } from '../domain/json.js';
import { entityOf } from '../domain/topics.js';
import type { Logger } from '../observability/logger.js';
import { commitEntity, entityOfTopics, HeadMismatch, SourceOffsetMismatch, type ChainHead, type CommitInput, type CommitResult, type HistoryEntry, type SourcePosition, type TopicHead, type TopicStore } from '../store/topic-store.js';
import { project, topicsFor } from './project.js';

export type ApplyOutcome = CommitResult | { applied: false; reason: 'rejected'; detail: string };

/**
 * Folds events into topics through the pure reducers and commits the result to the store.
 * Applies are serialised: the projector is the single writer of its topics, which is what lets it
 * keep their states in memory instead of reading them back before every event. Every commit states the
 * heads those cached states belong to, and the source offset it last applied to the event's entity, so
 * a store that came back older (or was written by someone else) refuses it rather than numbering the
 * wrong content; the projector then re-reads and retries (heads) or its source re-seeks (offsets).
 */
export class Projector {
  private readonly heads = new Map<string, TopicHead>();
  /** Per entity and source stream (`entityKey`): the last offset this projector applied to the entity, null for none. */
  private readonly offsets = new Map<string, string | null>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: TopicStore,
    private readonly log: Logger,
    /** Told of every commit's entries (the checkpointer signs the heads they leave). */
    private readonly onCommitted?: (entries: readonly HistoryEntry[]) => void,
  ) {}

  apply(event: DomainEvent, source?: SourcePosition): Promise<ApplyOutcome> {
    return this.serially(() => this.applyNow(event, source));
  }

  /** Marks a source position consumed without changing any topic (its event was dead-lettered). */
  async skip(source: SourcePosition): Promise<void> {
    await this.serially(() => this.commit({ eventId: `skip:${source.stream}@${source.offset}`, eventTs: new Date().toISOString(), source, changes: [] }));
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Forget cached states and applied offsets (e.g. after a Kafka rebalance another projector may have written them). */
  invalidate(): void {
    this.heads.clear();
    this.offsets.clear();
  }

  private async applyNow(event: DomainEvent, source?: SourcePosition): Promise<ApplyOutcome> {
    try {
      return await this.project(event, source);
    } catch (err) {
      if (!(err instanceof HeadMismatch)) throw err;
      await this.realign(err);
      return this.project(event, source); // a second mismatch means a concurrent writer: let it surface
    }
  }

  /**
   * Whether a source position is already in the store for the entity these topics belong to (none:
   * a skipped record's): a record re-read after a re-seek. Such a record is not reduced again, since
   * against the newer state it may be refused (a trade_id already there) and dead-lettered although
   * it was applied; nor is it dead-lettered twice.
   */
  async consumed(source: SourcePosition, topics: readonly string[] = []): Promise<boolean> {
    const entity = entityOfTopics(topics, source);
    const applied = await this.appliedOffset(entity, source.stream);
    return applied !== null && BigInt(source.offset) <= BigInt(applied);
  }

  private async project(event: DomainEvent, source: SourcePosition | undefined): Promise<ApplyOutcome> {
    const topics = topicsFor(event);
    if (source && (await this.consumed(source, topics))) return { applied: false, reason: 'already_applied_offset' };
    const missing = topics.filter((t) => !this.heads.has(t));
    if (missing.length > 0) for (const [topic, head] of await this.store.states(missing)) this.heads.set(topic, head);
    const current = new Map<string, JsonObject>();
    const expectedHeads = new Map<string, ChainHead | null>();
    for (const topic of topics) {
      const head = this.heads.get(topic);
      if (head) current.set(topic, head.state);
      expectedHeads.set(topic, head ?? null);
    }
    const { changes, rejected } = project(event, current);
    if (rejected !== undefined) {
      this.log.warn({ event_id: event.event_id, type: event.type, reason: rejected }, 'event rejected by projector');
      return { applied: false, reason: 'rejected', detail: rejected };
    }
    const result = await this.commit({ eventId: event.event_id, eventTs: event.ts, ...(source ? { source } : {}), changes, expectedHeads });
    if (result.applied) {
      changes.forEach((change, i) => {
        const entry = result.entries[i];
        if (entry) this.heads.set(change.topic, { epoch: entry.epoch, seq: entry.seq, ts: entry.ts, hash: entry.hash, state: change.state });
      });
      this.onCommitted?.(result.entries);
    }
    return result;
  }

  /**
   * Commits naming, for a source, the offset last applied to the commit's entity (read from the store the
   * first time), and remembers the new one. A store that lost the entity's writes since refuses with
   * SourceOffsetMismatch, and the source re-seeks (ProjectorConsumer). A commit without changes (a
   * dead-lettered record's offset) numbers nothing, so there is no history of it to guard.
   */
  private async commit(input: CommitInput): Promise<CommitResult> {
    const source = input.source;
    if (!source) return this.store.commit(input);
    const entity = commitEntity(input);
    const key = entityKey(entity, source.stream);
    if (input.changes.length === 0) {
      const skipped = await this.store.commit(input);
      // What `consumed` reads: the skip's offset now, or (refused: the store holds a later one) the store's.
      if (skipped.applied) this.offsets.set(key, source.offset);
      else this.offsets.delete(key);
      return skipped;
    }
    const after = await this.appliedOffset(entity, source.stream);
    let result: CommitResult;
    try {
      result = await this.store.commit({ ...input, source: { ...source, after } });
    } catch (err) {
      if (err instanceof SourceOffsetMismatch) this.rewind(entity, key, err.stored);
      throw err;
    }
    // A duplicate event id consumes its offset too (the store records it); an already applied offset leaves the entity's as it was.
    this.offsets.set(key, result.applied || result.reason === 'duplicate_event' ? source.offset : after);
    return result;
  }

  /** The offset of a stream last applied to an entity: as this projector remembers it, else as the store has it (then remembered). */
  private async appliedOffset(entity: string, stream: string): Promise<string | null> {
    const key = entityKey(entity, stream);
    const known = this.offsets.get(key);
    if (known !== undefined) return known;
    const stored = await this.store.appliedOffset(entity, stream);
    this.offsets.set(key, stored);
    return stored;
  }

  /**
   * The store lost what this projector applied to an entity: its source re-seeks to the stored offset + 1,
   * and the entity's topics are projected again from the states the store kept. Only this entity's
   * cache goes: what is believed of the others still catches their own losses (on a cluster each shard
   * loses its own suffix), where reading them back from the store would take its word for it.
   */
  private rewind(entity: string, key: string, stored: string | null): void {
    this.offsets.set(key, stored);
    for (const topic of this.heads.keys()) if (entityOf(topic) === entity) this.heads.delete(topic);
  }

  /**
   * The store's head of a topic is not where this projector left it. Behind it: entries this projector
   * committed are gone (Redis restored from an older snapshot, writes lost in a failover). Whatever
   * source replays them (Kafka) was already re-seeked by the offset check; seqs that would now be
   * handed to other content are made unambiguous by a new epoch, so clients holding the old numbering
   * re-sync instead of resuming into different entries. Either way the cached state is dropped.
   */
  private async realign(mismatch: HeadMismatch): Promise<void> {
    const cached = this.heads.get(mismatch.topic);
    this.heads.delete(mismatch.topic);
    if (mismatch.stored < mismatch.expected && cached) {
      const epoch = await this.store.renewEpoch(mismatch.topic, cached.epoch);
      this.log.error({ topic: mismatch.topic, expected: mismatch.expected, stored: mismatch.stored, old_epoch: cached.epoch, epoch }, 'store lost committed entries of a topic; new epoch so clients re-sync');
    } else {
      this.log.warn({ topic: mismatch.topic, expected: mismatch.expected, stored: mismatch.stored }, 'topic head moved under the projector; re-read');
    }
  }
}

function entityKey(entity: string, stream: string): string {
  return `${entity}\n${stream}`;
}
