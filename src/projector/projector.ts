import type { DomainEvent } from '../domain/events.js';
import type { JsonObject } from '../domain/json.js';
import { entityOf } from '../domain/topics.js';
import type { Logger } from '../observability/logger.js';
import { commitEntity, entityOfTopics, HeadMismatch, SourceOffsetMismatch, type ChainHead, type CommitInput, type CommitResult, type TopicChange, type HistoryEntry, type SourcePosition, type TopicHead, type TopicStore } from '../store/topic-store.js';
import { project, topicsFor } from './project.js';

/** An applied event: its entries, and the state each entry's topic has after it (what a replay checkpoint records). */
export interface Applied {
  applied: true;
  entries: HistoryEntry[];
  states: JsonObject[];
}

export type ApplyOutcome = Applied | Exclude<CommitResult, { applied: true }> | { applied: false; reason: 'rejected'; detail: string };

/** An event with the source position it was read from. */
export interface SourcedEvent {
  event: DomainEvent;
  source: SourcePosition;
}

/**
 * What {@link Projector.applyRun} did: one outcome per event, in order, up to the first rejected one;
 * `failed`: what the event after the last outcome threw (it and the rest were not applied).
 */
export interface RunOutcome {
  outcomes: ApplyOutcome[];
  failed?: unknown;
}

/** Most events one store round trip commits: bounds the script's run time and the size of a refused run. */
const MAX_RUN = 64;

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

  /**
   * Applies consecutive events of one source stream as `apply` would one after the other, committing
   * each stretch of one entity's events in one store round trip (TopicStore.commitRun): the stretch is
   * folded ahead onto the states its earlier events will leave, and the store checks every event against
   * what the ones before it wrote, so a refusal in the middle commits the events before it and nothing
   * after; it is then handled as it would be alone (re-read, re-seek), and the rest are folded again.
   * Stops after a rejected event: its caller dead-letters it before anything later is committed.
   */
  applyRun(items: readonly SourcedEvent[]): Promise<RunOutcome> {
    return this.serially(() => this.applyRunNow(items));
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
    return this.committed(changes, result);
  }

  /** Caches the heads a commit left (their states are the changes') and tells the checkpointer. */
  private committed(changes: readonly TopicChange[], result: CommitResult): ApplyOutcome {
    if (!result.applied) return result;
    changes.forEach((change, i) => {
      const entry = result.entries[i];
      if (entry) this.heads.set(change.topic, { epoch: entry.epoch, seq: entry.seq, ts: entry.ts, hash: entry.hash, state: change.state });
    });
    this.onCommitted?.(result.entries);
    return { ...result, states: changes.map((change) => change.state) };
  }

  private async applyRunNow(items: readonly SourcedEvent[]): Promise<RunOutcome> {
    const outcomes: ApplyOutcome[] = [];
    while (outcomes.length < items.length) {
      // A read or commit that throws (Redis unreachable) leaves the stretch's outcome unknown: none is reported.
      const { done, failed } = await this.applyStretch(items.slice(outcomes.length, outcomes.length + MAX_RUN)).catch((err: unknown) => ({ done: [], failed: err }));
      outcomes.push(...done);
      if (failed !== undefined) return { outcomes, failed };
      const last = done[done.length - 1];
      if (last && !last.applied && last.reason === 'rejected') break;
    }
    return { outcomes };
  }

  /**
   * Applies events from the start of `pending`: a stretch of one entity's in one commit run, or just the
   * first one alone when no stretch of two can be folded ahead (a record already applied, another
   * entity next, a rejected event: `apply`'s own path handles those).
   */
  private async applyStretch(pending: readonly SourcedEvent[]): Promise<{ done: ApplyOutcome[]; failed?: unknown }> {
    const [first] = pending;
    if (!first) return { done: [] };
    const stretch = await this.foldAhead(pending);
    if (!stretch) {
      try {
        return { done: [await this.applyNow(first.event, first.source)] };
      } catch (err) {
        return { done: [], failed: err };
      }
    }
    const { entity, inputs } = stretch;
    const run = await this.store.commitRun(inputs);
    const done: ApplyOutcome[] = [];
    run.results.forEach((result, i) => {
      const input = inputs[i] as CommitInput & { source: SourcePosition };
      this.settle(entityKey(entity, input.source.stream), input.source, result);
      done.push(this.committed(input.changes, result));
    });
    if (!run.refused) return { done };
    // The first refused event, handled as `apply` handles it alone; the ones after it are folded again.
    const refusedAt = pending[done.length] as SourcedEvent;
    const refusal = run.refused;
    if (refusal instanceof SourceOffsetMismatch) {
      this.rewind(entity, entityKey(entity, refusedAt.source.stream), refusal.stored);
      return { done, failed: refusal };
    }
    try {
      await this.realign(refusal);
      done.push(await this.project(refusedAt.event, refusedAt.source));
      return { done };
    } catch (err) {
      return { done, failed: err };
    }
  }

  /**
   * Folds a stretch of consecutive events of one entity onto the cached states, each onto the states
   * the ones before it leave, into the commit run that would apply them (undefined: fewer than two).
   * Each input names the heads of the topics no earlier input changes, and the previous input's offset.
   */
  private async foldAhead(pending: readonly SourcedEvent[]): Promise<{ entity: string; inputs: CommitInput[] } | undefined> {
    const [first] = pending;
    if (!first || pending.length < 2) return undefined;
    const firstTopics = topicsFor(first.event);
    const entity = entityOfTopicsOrNone(firstTopics, first.source);
    if (entity === undefined || (await this.consumed(first.source, firstTopics))) return undefined;
    let after = await this.appliedOffset(entity, first.source.stream);
    const ahead = new Map<string, JsonObject>();
    const inputs: CommitInput[] = [];
    for (const { event, source } of pending) {
      const topics = topicsFor(event);
      if (entityOfTopicsOrNone(topics, source) !== entity || source.stream !== first.source.stream) break;
      if (after !== null && BigInt(source.offset) <= BigInt(after)) break;
      const missing = topics.filter((t) => !this.heads.has(t) && !ahead.has(t));
      if (missing.length > 0) for (const [topic, head] of await this.store.states(missing)) this.heads.set(topic, head);
      const current = new Map<string, JsonObject>();
      const expectedHeads = new Map<string, ChainHead | null>();
      for (const topic of topics) {
        const state = ahead.get(topic) ?? this.heads.get(topic)?.state;
        if (state) current.set(topic, state);
        if (!ahead.has(topic)) expectedHeads.set(topic, this.heads.get(topic) ?? null);
      }
      const { changes, rejected } = project(event, current);
      if (rejected !== undefined || changes.length === 0) break;
      inputs.push({ eventId: event.event_id, eventTs: event.ts, source: { ...source, after }, changes, expectedHeads });
      for (const change of changes) ahead.set(change.topic, change.state);
      after = source.offset;
    }
    return inputs.length >= 2 ? { entity, inputs } : undefined;
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
    this.settle(key, { ...source, after }, result);
    return result;
  }

  /** The entity's applied offset after a commit from `source`: a duplicate event id consumes its offset too (the store records it); an already applied offset leaves the entity's as it was. */
  private settle(key: string, source: SourcePosition, result: CommitResult): void {
    this.offsets.set(key, result.applied || result.reason === 'duplicate_event' ? source.offset : (source.after ?? null));
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

/** The entity of an event's topics, undefined for topics of several entities (`apply` reports that). */
function entityOfTopicsOrNone(topics: readonly string[], source: SourcePosition): string | undefined {
  try {
    return entityOfTopics(topics, source);
  } catch {
    return undefined;
  }
}

function entityKey(entity: string, stream: string): string {
  return `${entity}\n${stream}`;
}
