import type { Kafka } from 'kafkajs';
import type { Config } from '../config/config.js';
import { createKafka } from '../ingest/kafka/kafka-client.js';
import { readCheckpoints, type ReplayCheckpoint } from '../ingest/kafka/checkpoints.js';
import { partitionBounds, partitionCount, readPartition, type PartitionRecord } from '../ingest/kafka/partition-reader.js';
import { kafkaTopic, partitionOf, topicSource } from '../ingest/kafka/routing.js';
import { entryHash, genesisHead } from '../store/chain.js';
import { entryOfStored, storedEntryOf, type StoredRead } from '../store/stored-entry.js';
import type { HistoryEntry, HistoryRead, Snapshot } from '../store/topic-store.js';
import { rebuildTopic, type RebuildStart, type RebuiltEntry } from './rebuild.js';
import type { Logger } from '../observability/logger.js';
import { ClientError } from '../protocol/errors.js';
import { replayHistory, type HistoryStore, type ReplayHistory } from './replay.js';
import type { ReplaySource } from './request.js';

/**
 * History beyond what Redis holds, rebuilt from Kafka (README "Audit and replay"), and the reader that
 * stitches the two: Redis for what it holds, Kafka for the rest, in seq order with no gap or duplicate.
 */

export interface KafkaHistoryOptions {
  kafka: Kafka;
  /** KAFKA_TOPIC_PREFIX. */
  prefix: string;
  /** Group id prefix of the rebuild's own consumers (each read joins a group of its own, commits nothing). */
  groupPrefix: string;
}

/** A replay's Kafka access from the configuration (the client connects only when a rebuild reads). */
export function replayKafkaOptions(config: Config, log: Logger): KafkaHistoryOptions {
  return { kafka: createKafka(config, log, '-replay'), prefix: config.KAFKA_TOPIC_PREFIX, groupPrefix: `${config.KAFKA_GROUP_ID}.replay` };
}

/** What a replay reads for `source`; closed when the replay is done. Without Kafka, `auto` is what the store holds. */
export function historyFor(store: HistoryStore, kafka: KafkaHistoryOptions | undefined, source: ReplaySource, epoch?: string): ReplayHistory & { close(): Promise<void> } {
  if (epoch !== undefined && !kafka) throw new ClientError('INVALID_MESSAGE', { reason: 'an earlier epoch is rebuilt from Kafka (KAFKA_BROKERS), which this server does not have' });
  if (source === 'redis' || (source === 'auto' && !kafka)) return { ...replayHistory(store), close: async () => undefined };
  if (!kafka) throw new ClientError('INVALID_MESSAGE', { reason: 'source kafka needs Kafka (KAFKA_BROKERS), which this server does not have' });
  const history = new KafkaHistory(kafka);
  const stitched = new StitchedHistory(store, history, source);
  return epoch === undefined ? stitched : new EpochHistory(replayHistory(store), history, stitched, epoch);
}

/** The rebuilt entries do not meet what Redis holds: the projection is not reproducible from Kafka. */
export class RebuildMismatch extends Error {
  constructor(topic: string, seq: number, against = "Redis' entry") {
    super(`topic ${topic}: the entries rebuilt from Kafka do not chain onto ${against} ${seq} (its hash does not follow the rebuilt one)`);
    this.name = 'RebuildMismatch';
  }
}

/** A rebuild in progress: the next seq it yields, so consecutive pages continue one pass over the partition. */
interface Cursor {
  topic: string;
  epoch: string;
  next: number;
  entries: AsyncGenerator<RebuiltEntry>;
}

/** Re-projects topics from their Kafka partitions, from the nearest checkpoint. */
export class KafkaHistory {
  private cursor: Cursor | undefined;
  private partitions: number | undefined;
  private readonly checkpointsByTopic = new Map<string, ReplayCheckpoint[]>();

  constructor(private readonly options: KafkaHistoryOptions) {}

  /** Whether the topic's events come from Kafka at all (system alerts, for one, do not). */
  covers(topic: string): boolean {
    return topicSource(topic) !== null;
  }

  /**
   * Entries `from`..`to` of the topic's epoch `epoch` (fewer if the partition ends first), each with the
   * state after it. Continues the current pass when it is where the last call stopped.
   */
  async entries(topic: string, epoch: string, from: number, to: number): Promise<RebuiltEntry[]> {
    let cursor = this.cursor;
    if (!cursor || cursor.topic !== topic || cursor.epoch !== epoch || cursor.next !== from) {
      cursor = await this.open(topic, epoch, (await this.checkpoints(topic)).filter((c) => c.epoch === epoch && c.seq < from).at(-1));
    }
    const out: RebuiltEntry[] = [];
    while (cursor.next <= to) {
      const step = await cursor.entries.next();
      if (step.done) break;
      cursor.next = step.value.entry.seq + 1;
      if (step.value.entry.seq >= from) out.push(step.value);
    }
    return out;
  }

  /**
   * The topic's snapshot as of `at` in epoch `epoch`: the state after the last entry committed at or
   * before it (seq 0 and an empty state before the first), from the newest checkpoint at or before `at`
   * re-projected forward until an entry is later than `at` (history is ts-ordered, so at most one
   * checkpoint interval plus the entries sharing its boundary's ts).
   */
  async stateAt(topic: string, epoch: string, at: string): Promise<Snapshot> {
    const checkpoint = (await this.checkpoints(topic)).filter((c) => c.epoch === epoch && c.ts <= at).at(-1);
    let state: Snapshot = checkpoint ? { topic, epoch, seq: checkpoint.seq, ts: checkpoint.ts, state: checkpoint.state } : { topic, epoch, seq: 0, ts: '', state: {} };
    const cursor = await this.open(topic, epoch, checkpoint);
    this.cursor = undefined;
    for await (const { entry, state: after } of cursor.entries) {
      if (entry.ts > at) break;
      state = { topic, epoch, seq: entry.seq, ts: entry.ts, state: after };
    }
    await cursor.entries.return(undefined);
    return state;
  }

  /** A topic's checkpoints, oldest first (read once per KafkaHistory). */
  async checkpoints(topic: string): Promise<ReplayCheckpoint[]> {
    let list = this.checkpointsByTopic.get(topic);
    if (!list) {
      const { kafka, prefix, groupPrefix } = this.options;
      list = await readCheckpoints(kafka, prefix, groupPrefix, topic);
      this.checkpointsByTopic.set(topic, list);
    }
    return list;
  }

  async close(): Promise<void> {
    await this.cursor?.entries.return(undefined);
    this.cursor = undefined;
  }

  /** A pass from `checkpoint` (none: the partition's start). */
  private async open(topic: string, epoch: string, checkpoint: ReplayCheckpoint | undefined): Promise<Cursor> {
    await this.close();
    const source = topicSource(topic);
    if (!source) throw new Error(`topic ${topic} is not projected from Kafka`);
    const start: RebuildStart = checkpoint
      ? { head: { epoch, seq: checkpoint.seq, ts: checkpoint.ts, hash: checkpoint.hash }, state: checkpoint.state }
      : { head: genesisHead(topic, epoch), state: undefined };
    const { kafka, prefix, groupPrefix } = this.options;
    const partitions = await this.partitionCount();
    const partition = checkpoint?.partition ?? partitionOf(source.key, partitions);
    const name = kafkaTopic(prefix, source.family);
    // Nothing to rebuild from: no such Kafka topic (nothing produced under this prefix), or, without a
    // checkpoint, a partition whose first records are gone (retention): folding from later ones onto an
    // empty state would not give what was served.
    const unusable = partitions === 0 || (!checkpoint && (await partitionBounds(kafka, name, partition)).low > 0n);
    const batches = unusable ? none() : readPartition(kafka, groupPrefix, name, partition, checkpoint ? BigInt(checkpoint.offset) + 1n : undefined);
    this.cursor = { topic, epoch, next: start.head.seq + 1, entries: rebuildTopic(topic, batches, start) };
    return this.cursor;
  }

  private async partitionCount(): Promise<number> {
    this.partitions ??= await partitionCount(this.options.kafka, kafkaTopic(this.options.prefix, 'market'));
    return this.partitions;
  }
}

async function* none(): AsyncGenerator<PartitionRecord[]> {}

/**
 * A history reader over Redis and Kafka. `auto`: Redis' entries where it holds them, rebuilt ones before
 * its first held seq, the seam checked by the hash chain (Redis' first held entry must follow the last
 * rebuilt one); `kafka`: every entry rebuilt (Redis gives only the topic's epoch and head). Either way
 * the history it shows starts at seq 1, so a replay's range is never `trimmed`.
 */
export class StitchedHistory implements ReplayHistory {
  /** Per topic: whether Kafka's rebuild meets what Redis holds (checked once, before any rebuilt entry is served). */
  private readonly seams = new Map<string, boolean>();
  private readonly store: ReplayHistory;

  constructor(
    store: HistoryStore,
    private readonly kafka: KafkaHistory,
    private readonly source: Exclude<ReplaySource, 'redis'>,
  ) {
    this.store = replayHistory(store);
  }

  readAfter(topic: string, afterSeq: number, limit: number): Promise<HistoryRead> {
    return this.stitch(topic, afterSeq, limit, { read: (t, a, l) => this.store.readAfter(t, a, l), ofRebuilt: (e) => e, parsed: (e) => e });
  }

  readStoredAfter(topic: string, afterSeq: number, limit: number): Promise<StoredRead> {
    return this.stitch(topic, afterSeq, limit, { read: (t, a, l) => this.store.readStoredAfter(t, a, l), ofRebuilt: storedEntryOf, parsed: entryOfStored });
  }

  /** Both reads, in the entry form `form` gives: the held part read in it, rebuilt entries turned into it. */
  private async stitch<E extends { seq: number; epoch: string }>(topic: string, afterSeq: number, limit: number, form: EntryForm<E>): Promise<Omit<HistoryRead, 'entries'> & { entries: E[] }> {
    const held = await form.read(topic, afterSeq, limit);
    if (!this.kafka.covers(topic) || held.headSeq === 0) return held;
    const firstHeld = this.source === 'kafka' ? held.headSeq + 1 : held.firstSeq;
    if (firstHeld <= 1) return held;
    // Redis' oldest held entry: its epoch is the one its predecessors were committed in (one epoch per rebuild).
    const heldFirst = held.entries[0];
    const seam = this.source === 'kafka' ? undefined : heldFirst?.seq === firstHeld ? form.parsed(heldFirst) : (await this.store.readAfter(topic, firstHeld - 1, 1)).entries[0];
    const epoch = seam?.epoch ?? held.epoch;
    // Kafka not holding what Redis was built from: what Redis holds, as without Kafka (older seqs trimmed).
    if (this.source === 'auto' && !(await this.meets(topic, epoch, firstHeld, seam))) return held;
    const bounds = { epoch: held.epoch, headSeq: held.headSeq, firstSeq: 1 };
    const heldEntries = this.source === 'kafka' ? [] : held.entries;
    if (limit === 0 || afterSeq + 1 >= firstHeld) return { ...bounds, entries: heldEntries };
    const upTo = Math.min(afterSeq + limit, firstHeld - 1);
    const rebuilt = (await this.kafka.entries(topic, epoch, afterSeq + 1, upTo)).map((r) => r.entry);
    const last = rebuilt.at(-1);
    if (last !== undefined && last.seq === firstHeld - 1 && seam && !follows(last, seam)) throw new RebuildMismatch(topic, seam.seq);
    // A page short of the held part (records gone from Kafka meanwhile) goes on with Redis' entries: the
    // replay reports the seqs between as trimmed.
    const entries = rebuilt.map(form.ofRebuilt);
    if (last?.seq === upTo && upTo < firstHeld - 1) return { ...bounds, entries };
    return { ...bounds, entries: [...entries, ...heldEntries].slice(0, limit) };
  }

  close(): Promise<void> {
    return this.kafka.close();
  }

  /**
   * Whether the Kafka this reader was given holds the history Redis was built from: the rebuilt entry
   * before Redis' first held one must be its chain predecessor. One pass of at most a checkpoint interval,
   * before anything rebuilt is served. Kafka ending short of it (retention, events projected without
   * Kafka, another prefix) serves Redis only; reaching it with another entry is a RebuildMismatch.
   */
  private async meets(topic: string, epoch: string, firstHeld: number, seam: HistoryEntry | undefined): Promise<boolean> {
    let known = this.seams.get(topic);
    if (known === undefined) {
      if (!seam) known = true;
      else {
        const [last] = await this.kafka.entries(topic, epoch, firstHeld - 1, firstHeld - 1);
        if (last && !follows(last.entry, seam)) throw new RebuildMismatch(topic, seam.seq);
        known = last !== undefined;
      }
      this.seams.set(topic, known);
    }
    return known;
  }
}

/** An entry form a stitched read is done in: its held read, and the conversions from and to parsed entries. */
interface EntryForm<E> {
  read(topic: string, afterSeq: number, limit: number): Promise<Omit<HistoryRead, 'entries'> & { entries: E[] }>;
  ofRebuilt(entry: HistoryEntry): E;
  parsed(entry: E): HistoryEntry;
}

/**
 * An earlier epoch of a topic (README "Audit and replay", Epochs): after Redis was wiped the topic was
 * re-projected under a new epoch, and what clients were sent under the old one is in Redis no more.
 * Its entries are rebuilt from Kafka under its own chain, from its checkpoints (or the partition's start
 * and its hash(0)), and checked against every checkpoint of it they pass (same hash, or a
 * RebuildMismatch). Its history ends, as far as any durable record knows, at its last checkpoint: that
 * is its head here, and later seqs are `beyond_head`. The current epoch (or the held entries' own)
 * is served as without `epoch`.
 */
export class EpochHistory implements ReplayHistory {
  private current: boolean | undefined;

  constructor(
    private readonly store: ReplayHistory,
    private readonly kafka: KafkaHistory,
    private readonly stitched: StitchedHistory,
    private readonly epoch: string,
  ) {}

  async readAfter(topic: string, afterSeq: number, limit: number): Promise<HistoryRead> {
    if (await this.isCurrent(topic)) return this.stitched.readAfter(topic, afterSeq, limit);
    return this.rebuilt(topic, afterSeq, limit, (e) => e);
  }

  async readStoredAfter(topic: string, afterSeq: number, limit: number): Promise<StoredRead> {
    if (await this.isCurrent(topic)) return this.stitched.readStoredAfter(topic, afterSeq, limit);
    return this.rebuilt(topic, afterSeq, limit, storedEntryOf);
  }

  close(): Promise<void> {
    return this.kafka.close();
  }

  private async isCurrent(topic: string): Promise<boolean> {
    if (this.current === undefined) {
      const held = await this.store.readAfter(topic, 0, 1);
      this.current = held.epoch === this.epoch || held.entries[0]?.epoch === this.epoch;
    }
    return this.current;
  }

  private async rebuilt<E>(topic: string, afterSeq: number, limit: number, form: (entry: HistoryEntry) => E): Promise<Omit<HistoryRead, 'entries'> & { entries: E[] }> {
    const checkpoints = this.kafka.covers(topic) ? (await this.kafka.checkpoints(topic)).filter((c) => c.epoch === this.epoch) : [];
    const last = checkpoints.at(-1);
    if (!last) throw new ClientError('INVALID_MESSAGE', { reason: `epoch ${this.epoch} of ${topic} is neither its current one nor in its replay checkpoints`, topic, epoch: this.epoch });
    const bounds = { epoch: this.epoch, headSeq: last.seq, firstSeq: 1 };
    const upTo = Math.min(afterSeq + limit, last.seq);
    if (limit === 0 || afterSeq >= upTo) return { ...bounds, entries: [] };
    const hashes = new Map(checkpoints.map((c) => [c.seq, c.hash]));
    const entries = (await this.kafka.entries(topic, this.epoch, afterSeq + 1, upTo)).map(({ entry }) => {
      const expected = hashes.get(entry.seq);
      if (expected !== undefined && expected !== entry.hash) throw new RebuildMismatch(topic, entry.seq, 'the epoch\'s checkpoint at');
      return form(entry);
    });
    return { ...bounds, entries };
  }
}

/** Whether `next` is the chain's entry after `previous` (same epoch, next seq, hash linked). */
function follows(previous: HistoryEntry, next: HistoryEntry): boolean {
  return next.epoch === previous.epoch && next.seq === previous.seq + 1 && entryHash(previous.hash, next) === next.hash;
}
