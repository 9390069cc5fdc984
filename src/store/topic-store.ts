import type { JsonObject } from '../domain/json.js';
import { entityOf } from '../domain/topics.js';

/**
 * What applying one event does to one topic: the delta clients receive and the topic's state afterwards.
 * Produced by the pure reducers (src/projector), committed by a TopicStore, which assigns the `seq`.
 * Defined here, with the store that commits it, so the projector depends on the store and not back.
 */
export interface TopicChange {
  topic: string;
  /** Envelope type clients receive for this entry. */
  type: 'delta' | 'alert';
  /** What changed. Always carries a `kind` discriminator (e.g. `l1`, `l2`, `trade`, `order`, `breach`). */
  payload: JsonObject & { kind: string };
  /** The topic's full state after this change; becomes the snapshot. */
  state: JsonObject;
}

/** One entry of a topic's sequenced history, exactly what a `delta`/`alert` envelope carries. */
export interface HistoryEntry {
  topic: string;
  /** The topic's epoch when the entry was committed. */
  epoch: string;
  seq: number;
  type: 'delta' | 'alert';
  /**
   * Commit time (ISO-8601 UTC): the source's record time when the commit names one (the Kafka record
   * timestamp, {@link SourcePosition.ts}), else the store's clock; never before the topic's previous
   * entry, so a topic's history is ordered by ts as well as by seq. From a source it is reproducible:
   * re-projecting the same records in the same order gives every entry the same ts again.
   */
  ts: string;
  /** Upstream event time, for end-to-end latency measurement. */
  event_ts: string;
  /** The upstream event_id that produced this entry; used as the envelope's correlation_id. */
  event_id: string;
  payload: JsonObject & { kind: string };
  /**
   * The entry's link in its topic's hash chain (src/store/chain.ts): `hex(SHA-256(previous hash + "\n" +
   * JCS(the fields above)))`, the previous hash being the epoch's `hash(0)` for its first entry. Computed
   * when the seq is assigned, in the same atomic commit.
   */
  hash: string;
}

export interface Snapshot {
  topic: string;
  /** Changes whenever the topic's history is reset; a client holding another epoch must re-sync. */
  epoch: string;
  /** The last seq reflected in `state`. 0 for a topic with no entries yet. */
  seq: number;
  ts: string;
  state: JsonObject;
}

export interface HistoryRead {
  epoch: string;
  /** Highest seq committed to the topic. */
  headSeq: number;
  /** Lowest seq still held in history (headSeq + 1 when history is empty). */
  firstSeq: number;
  /** Entries with seq > afterSeq, ascending, at most `limit`. */
  entries: HistoryEntry[];
}

export interface TopicInfo {
  topic: string;
  epoch: string;
  headSeq: number;
  updatedAt: string;
}

/** Where an event came from, so a redelivered event changes nothing (e.g. Kafka partition + offset). */
export interface SourcePosition {
  /** e.g. `bondx.market/3` */
  stream: string;
  offset: string;
  /**
   * The last offset of this stream the caller knows to be applied to the commit's entity
   * ({@link commitEntity}; `null`: none yet). When given, the commit is refused with
   * {@link SourceOffsetMismatch} if the store holds another for that entity: the store came back older
   * (restored snapshot, lost writes, a failover of the entity's Redis Cluster shard) or someone else
   * consumed the stream meanwhile.
   */
  after?: string | null;
  /**
   * When the source recorded the event (ISO-8601 UTC; for Kafka the record timestamp). The store
   * commits with it instead of its own clock, so the entries' `ts` is the same however often, and
   * wherever, the record is projected.
   */
  ts?: string;
}

/**
 * The commit time a store starts from (then raises to each topic's previous entry): the source's `ts` in
 * canonical form (`toISOString`, so ts strings order as text), else the store's clock.
 */
export function commitTime(source: SourcePosition | undefined): string {
  if (source?.ts === undefined) return new Date().toISOString();
  const ms = Date.parse(source.ts);
  if (Number.isNaN(ms)) throw new Error(`source ts must be an ISO-8601 time, got ${JSON.stringify(source.ts)}`);
  return new Date(ms).toISOString();
}

/**
 * The entity a commit belongs to (src/domain/topics.ts `entityOf`): its changes' topics', which must all
 * be one entity's; a commit without changes (a dead-lettered record's offset, `Projector.skip`) belongs to
 * its source stream (`source:<stream>`). The store keeps an entity's dedup window and applied source
 * offsets with its topics (on Redis Cluster: one hash slot), so one commit touches one entity only.
 */
export function commitEntity(input: Pick<CommitInput, 'changes' | 'source'>): string {
  return entityOfTopics(
    input.changes.map((change) => change.topic),
    input.source,
  );
}

/** The one entity of a commit run ({@link TopicStore.commitRun}); throws, before any write, on a run of several. */
export function runEntity(inputs: readonly Pick<CommitInput, 'changes' | 'source'>[]): string {
  const [first, ...rest] = inputs;
  const entity = first ? commitEntity(first) : '';
  const other = rest.find((input) => commitEntity(input) !== entity);
  if (other) throw new Error(`a commit run must be one entity's: ${entity} and ${commitEntity(other)}`);
  return entity;
}

/** The entity a commit of these topics (from this source) belongs to: {@link commitEntity} before the changes exist. */
export function entityOfTopics(topics: readonly string[], source?: Pick<SourcePosition, 'stream'>): string {
  const [first, ...rest] = topics;
  if (first === undefined) return `source:${source?.stream ?? ''}`;
  const entity = entityOf(first);
  const other = rest.find((topic) => entityOf(topic) !== entity);
  if (other !== undefined) throw new Error(`a commit's topics must belong to one entity: ${first} is ${entity}, ${other} is ${entityOf(other)}`);
  return entity;
}

/**
 * Where a topic's hash chain stands: its newest entry's epoch, seq, ts and hash; or, for an epoch with no
 * entry yet (a renewed one), the old head's seq and ts with the new epoch's `hash(0)`. The next entry
 * follows it (src/store/chain.ts), and a commit naming it is refused unless it is still the store's.
 */
export interface ChainHead {
  epoch: string;
  seq: number;
  /** The newest entry's ts ('' before the first entry): the next one is never earlier. */
  ts: string;
  hash: string;
}

/** What a projector caches per topic: the state to fold onto and the chain head it belongs to. */
export interface TopicHead extends ChainHead {
  state: JsonObject;
}

export interface CommitInput {
  eventId: string;
  eventTs: string;
  source?: SourcePosition;
  changes: TopicChange[];
  /**
   * The chain head the caller expects per changed topic (null: the topic does not exist yet); the new
   * entries are chained onto these. A topic whose head (seq, epoch or hash) differs refuses the whole
   * commit with {@link HeadMismatch}: the state the change was folded onto is not the store's, so
   * committing it would hand a seq to the wrong content. Without it the store reads the heads itself
   * (one more round trip) and commits onto them the same way.
   */
  expectedHeads?: ReadonlyMap<string, ChainHead | null>;
}

/**
 * The store's record of a source stream for the commit's entity is not the one the committer expected.
 * Nothing was written.
 * Thrown, not returned, so that no caller can mistake it for a harmless duplicate.
 */
export class SourceOffsetMismatch extends Error {
  constructor(
    readonly stream: string,
    readonly expected: string | null,
    readonly stored: string | null,
  ) {
    super(`source ${stream}: store holds offset ${stored ?? 'none'}, committer expected ${expected ?? 'none'}`);
    this.name = 'SourceOffsetMismatch';
  }
}

/**
 * A changed topic's head is not the one the committer expected: another seq (`stored` < `expected`: the
 * store lost entries), or the same seq with another epoch or hash (renewed, or rewritten). Nothing was written.
 */
export class HeadMismatch extends Error {
  constructor(
    readonly topic: string,
    readonly expected: number,
    readonly stored: number,
  ) {
    super(`topic ${topic}: store head is ${stored}, committer expected ${expected}${stored === expected ? ' (with another epoch or hash)' : ''}`);
    this.name = 'HeadMismatch';
  }
}

export type CommitResult =
  | { applied: true; entries: HistoryEntry[] }
  | { applied: false; reason: 'duplicate_event' | 'already_applied_offset' };

/**
 * What a run of commits left ({@link TopicStore.commitRun}): the results of its commits in order, up to
 * and including the first that did not apply; the ones after it were not attempted. `refused`: that one
 * was refused by its expectations (what `commit` throws), and `results` holds only those before it.
 */
export interface RunResult {
  results: CommitResult[];
  refused?: SourceOffsetMismatch | HeadMismatch;
}

/** A run of one commit answered as `commit` answers: its result, or its refusal thrown. */
export function onlyResult(run: RunResult): CommitResult {
  if (run.refused) throw run.refused;
  const [result] = run.results;
  if (!result) throw new Error('a commit run of one returned no result');
  return result;
}

export type Unsubscribe = () => void;

/**
 * Sequenced per-topic history plus snapshots. Implementations: in-memory (embedded mode) and Redis.
 * Contract (tested against every implementation in test/contract):
 * - seq starts at 1 and grows by exactly 1 per entry per topic, no gaps;
 * - a commit's changes belong to one entity ({@link commitEntity}); it is atomic across them and
 *   idempotent per entity: by eventId (the newest dedupWindow ids of the entity) and by source position
 *   (the last offset of each stream applied to the entity);
 * - a commit given expectations (source `after`, `expectedHeads`) writes nothing unless all hold;
 * - history is bounded (oldest trimmed), snapshots always reflect the head seq;
 * - an entry's ts is the source's `ts` when the commit gives one, else the clock, raised to the topic's
 *   previous entry's ts when earlier (history is ts-ordered: replay finds a time by binary search);
 * - every entry carries its hash-chain link, computed by src/store/chain.ts from the head it was
 *   committed onto; a renewed epoch starts a new chain (its `hash(0)` becomes the head's hash);
 * - signed audit checkpoints appended to a topic are read back in order (kept as long as its history).
 */
export interface TopicStore {
  commit(input: CommitInput): Promise<CommitResult>;
  /**
   * Consecutive commits of one entity in one atomic step (on Redis: one script call, one round trip),
   * each checked and applied exactly as `commit` would right after the ones before it, stopping at the
   * first that does not apply: the later ones were built on it, so they are not attempted. Each input
   * names `expectedHeads` for the topics no earlier input of the run changed; the others follow the
   * run's own entries. For a projector committing a Kafka batch: one round trip instead of one per event.
   */
  commitRun(inputs: readonly CommitInput[]): Promise<RunResult>;
  snapshot(topic: string): Promise<Snapshot | null>;
  /** Current heads and states, for the projector to reduce onto (missing topics are absent from the map). */
  states(topics: string[]): Promise<Map<string, TopicHead>>;
  readAfter(topic: string, afterSeq: number, limit: number): Promise<HistoryRead>;
  topics(): Promise<TopicInfo[]>;
  /**
   * Per source stream (e.g. Kafka partition) where consumption resumes; streams with none are absent.
   * No record the store may have lost is at or before it, and a record redelivered after it that an
   * entity already holds is refused by the entity's own offset. One node (and memory): the highest
   * offset applied to any entity. A Redis Cluster: the lowest over the masters of each one's highest,
   * since each shard loses its own suffix (RedisTopicStore.sourceOffsets). Read from every entity's
   * offsets: an assignment-time read, not a per-event one.
   */
  sourceOffsets(streams: readonly string[]): Promise<Map<string, string>>;
  /** The last offset of a source stream applied to an entity ({@link commitEntity}); null: none. What a committer names as `after`. */
  appliedOffset(entity: string, stream: string): Promise<string | null>;
  /** Drop a topic's history and snapshot and start a new epoch (admin / replay). */
  reset(topic: string): Promise<void>;
  /**
   * Gives the topic a new epoch, keeping its seq, state and history, if its epoch is still `epoch`
   * (so concurrent callers renew once). For a history that was rewritten under its old epoch: clients
   * holding the old epoch re-sync. Resolves with the topic's epoch afterwards ('' if it does not exist).
   */
  renewEpoch(topic: string, epoch: string): Promise<string>;
  /** Appends a signed audit checkpoint of a topic's head (where no Kafka audit topic is configured). */
  appendAuditCheckpoint(checkpoint: SignedCheckpoint): Promise<void>;
  /** A topic's audit checkpoints, oldest first. */
  auditCheckpoints(topic: string): Promise<SignedCheckpoint[]>;
  close(): Promise<void>;
}

/** A topic's head as a checkpoint signs it: the newest entry's link in the chain. */
export interface Checkpoint {
  topic: string;
  epoch: string;
  seq: number;
  hash: string;
  ts: string;
}

/** A checkpoint with its Ed25519 signature over `JCS(checkpoint)` (src/store/checkpoint.ts). */
export interface SignedCheckpoint extends Checkpoint {
  /** When it was signed (ISO-8601 UTC); not signed itself. */
  signed_at: string;
  /** First 16 hex digits of SHA-256 of the raw public key: which key signed it. */
  key_id: string;
  /** base64 signature. */
  sig: string;
}

/**
 * Live notification of committed entries, in commit order per topic. Delivery may skip entries
 * (e.g. a pub/sub message lost during reconnect); consumers detect gaps by seq and fill them from history.
 * Some changes show in no entry: a gap at the end (nothing committed after the loss) has no later seq to
 * reveal it, and a renewed epoch has no entry until the next commit. For those the feed calls `onStale`:
 * re-read the topic's head and epoch from the store (after a reconnect, once it listens again, so nothing
 * committed from then on is missed).
 */
export interface LiveFeed {
  subscribe(topic: string, onEntry: (entry: HistoryEntry) => void, onStale?: () => void): Unsubscribe;
  /**
   * Resolves once the subscriptions asked for so far are listening (Redis: their SSUBSCRIBEs answered;
   * rejects if one failed). Only then does a head read cover everything the feed will not deliver.
   */
  ready(): Promise<void>;
  close(): Promise<void>;
}
