import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Config } from '../../config/config.js';
import type { Logger } from '../../observability/logger.js';
import type { Projector } from '../../projector/projector.js';
import { SourceOffsetMismatch, type TopicStore } from '../../store/topic-store.js';
import type { CommittedHead, Ingest } from '../ingest.js';
import { CheckpointWriter, checkpointsTopic } from './checkpoints.js';
import { ConnectionState, type KafkaClientStatus } from './connection-state.js';
import { createProducer } from './kafka-client.js';
import { FAMILIES, kafkaTopic, recordTime, sourceStream } from './routing.js';

/** Records handed to the ingest path at once: a rebalance (isRunning, isStale) is noticed between runs. */
const RUN_RECORDS = 64;

/** Kafka's "earliest offset" for a seek: the store holds nothing of a partition any more. */
const EARLIEST = '-2';

/**
 * Feeds Kafka's event topics through the ingest path into the projector. Effectively once: the
 * partition/offset applied is stored atomically with each projection, the consumer resumes from that
 * stored offset on every assignment, and a redelivered offset changes nothing.
 *
 * Offsets are stored per entity (an ISIN, an auction, a user: what one event touches), so a Redis Cluster
 * keeps them in the entity's slot; a partition resumes after the highest any entity holds. Every commit
 * names the offset the projector last applied to its entity. If the store holds another (Redis came back
 * from an older snapshot, a shard lost writes in a failover), it refuses the commit and the consumer
 * re-seeks to the entity's stored offset + 1: the events the store lost are projected again,
 * deterministically, onto the states the store kept, so they get back the same seqs and content; the
 * records of other entities replayed on the way are refused by their own entities' offsets.
 */
export class ProjectorConsumer {
  private readonly consumer: Consumer;
  /** Highest offset applied per `topic/partition`, mirrored from the store to skip redeliveries cheaply. */
  private readonly applied = new Map<string, bigint>();
  /** Messages behind the partition's high watermark, per `topic/partition`. */
  private readonly lagByPartition = new Map<string, number>();
  /**
   * Settles once the stored offsets of the current assignment are loaded (and seeks issued). Batches
   * wait for it: the first fetch after a join can return before the GROUP_JOIN handler has read the
   * offsets, and an already-applied message that is invalid would then be dead-lettered a second time
   * (valid ones are still refused by the store's offset check).
   */
  private resumed: Promise<void> = Promise.resolve();
  /**
   * After a re-seek to the store's position, per `topic/partition`: the offset that must come next for
   * the lost events to be re-projected. If Kafka no longer has it (retention), they cannot be.
   */
  private readonly rewound = new Map<string, bigint>();
  /** Epochs this consumer gave topics because of lost events: each partition finding the loss must not renew them again. */
  private readonly renewed = new Set<string>();
  /** Connectivity for health, from the consumer's instrumentation events. */
  private readonly state = new ConnectionState('not started');
  /** Replay checkpoints every REPLAY_CHECKPOINT_EVERY entries of a topic (README "Audit and replay"). */
  private readonly checkpoints: CheckpointWriter;
  private readonly checkpointProducer: Producer;

  constructor(
    kafka: Kafka,
    private readonly config: Config,
    private readonly ingest: Ingest,
    private readonly projector: Projector,
    private readonly store: TopicStore,
    private readonly log: Logger,
  ) {
    // A short session lets a standby projector take over a crashed one's partitions quickly.
    this.consumer = kafka.consumer({
      groupId: config.KAFKA_GROUP_ID,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 20,
      sessionTimeout: config.KAFKA_SESSION_TIMEOUT_MS,
      heartbeatInterval: Math.max(500, Math.floor(config.KAFKA_SESSION_TIMEOUT_MS / 5)),
    });
    // A crash emits STOP and DISCONNECT, then CRASH; a restart after it rejoins (GROUP_JOIN) without a new CONNECT.
    const { CONNECT, GROUP_JOIN, STOP, DISCONNECT, CRASH } = this.consumer.events;
    this.consumer.on(CONNECT, () => this.state.set('up', 'connected, joining group'));
    this.consumer.on(GROUP_JOIN, (e) => this.state.set('up', `member of group ${e.payload.groupId}`));
    this.consumer.on(STOP, () => this.state.set('down', 'stopped'));
    this.consumer.on(DISCONNECT, () => this.state.set('down', 'disconnected'));
    this.checkpointProducer = createProducer(kafka, true);
    this.checkpoints = new CheckpointWriter(this.checkpointProducer, checkpointsTopic(config.KAFKA_TOPIC_PREFIX), config.REPLAY_CHECKPOINT_EVERY, log);
    this.consumer.on(CRASH, (e) => this.state.set('down', `crashed: ${e.payload.error.message}${e.payload.restart ? ' (restarting)' : ''}`));
  }

  /** Whether the consumer is connected and in its group, as its last instrumentation event said. */
  status(): KafkaClientStatus {
    return this.state.get();
  }

  async start(): Promise<void> {
    const topics = FAMILIES.map((f) => kafkaTopic(this.config.KAFKA_TOPIC_PREFIX, f));
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.resumed = this.onAssignment(e.payload.memberAssignment).catch((err: unknown) => this.log.error({ err }, 'resuming from stored offsets failed'));
    });
    await this.checkpointProducer.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics, fromBeginning: true });
    await this.consumer.run({
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        await this.resumed;
        const stream = sourceStream(batch.topic, batch.partition);
        const consumed = (offset: bigint): void => {
          resolveOffset(offset.toString());
          this.lagByPartition.set(stream, Math.max(0, Number(BigInt(batch.highWatermark) - offset - 1n)));
        };
        // Records go to the ingest path in runs (one store round trip per stretch of an entity's events);
        // a run ends where a record needs looking at first: one re-read after a re-seek.
        let run: KafkaMessage[] = [];
        const flush = async (): Promise<boolean> => {
          const records = run;
          run = [];
          if (records.length === 0) return true;
          const { outcomes, failed } = await this.ingest.submitRun(
            records.map((message) => ({ raw: parseOrRaw(message.value?.toString('utf8') ?? ''), position: { stream, offset: message.offset, ...recordTime(message.timestamp) } })),
            'kafka',
          );
          for (const [i, outcome] of outcomes.entries()) {
            const message = records[i] as KafkaMessage;
            if (outcome.committed) await this.checkpoint(outcome.committed, batch.partition, message.offset);
            this.applied.set(stream, BigInt(message.offset));
            consumed(BigInt(message.offset));
          }
          await heartbeat();
          if (failed === undefined) return true;
          if (!(failed instanceof SourceOffsetMismatch)) throw failed;
          // Nothing after the refused record was applied: the rest of this batch comes again from the new position.
          this.realign(batch.topic, batch.partition, failed, BigInt((records[outcomes.length] as KafkaMessage).offset));
          return false;
        };
        for (const message of batch.messages) {
          // Stopping or rebalanced: the records collected so far are not applied (they come again).
          if (!isRunning() || isStale()) return;
          const offset = BigInt(message.offset);
          const want = this.rewound.get(stream);
          if (want !== undefined) {
            if (!(await flush())) return;
            this.rewound.delete(stream);
            if (offset > want) await this.unrecoverable(stream, want, offset);
          }
          const done = this.applied.get(stream);
          if (done !== undefined && offset <= done) {
            if (!(await flush())) return;
            consumed(offset);
            continue;
          }
          run.push(message);
          if (run.length >= RUN_RECORDS && !(await flush())) return;
        }
        await flush();
      },
    });
  }

  /** Total messages not yet applied across assigned partitions (projector lag). */
  lag(): number {
    let total = 0;
    for (const n of this.lagByPartition.values()) total += n;
    return total;
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.checkpointProducer.disconnect();
  }

  /** A replay checkpoint that fails to be written only makes rebuilds start further back: logged, never fatal. */
  private async checkpoint(heads: readonly CommittedHead[], partition: number, offset: string): Promise<void> {
    try {
      await this.checkpoints.committed(heads, partition, offset);
    } catch (err) {
      this.log.warn({ err, partition, offset }, 'replay checkpoint not written');
    }
  }

  /**
   * The store is not where this consumer left an entity of the partition: continue from where the store
   * has it. (The projector already dropped that entity's cache and keeps what it applied to the others:
   * an entity that lost more, on another shard, is caught by its own next commit and re-seeks further.)
   * Never forward of `at`, the record refused: while re-reading from an earlier entity's offset, an entity
   * the store holds further than that may be refused too, and the records in between are still to come.
   */
  private realign(topic: string, partition: number, mismatch: SourceOffsetMismatch, at: bigint): void {
    this.log.error({ stream: mismatch.stream, expected: mismatch.expected, stored: mismatch.stored }, 'store is not at the offset this projector applied (restored or failed over?); re-seeking to the stored offset');
    const stored = mismatch.stored === null ? -1n : BigInt(mismatch.stored);
    const next = stored + 1n < at ? stored + 1n : at;
    if (next === 0n) this.applied.delete(mismatch.stream);
    else this.applied.set(mismatch.stream, next - 1n);
    this.rewound.set(mismatch.stream, next);
    this.consumer.seek({ topic, partition, offset: mismatch.stored === null ? EARLIEST : next.toString() });
  }

  /**
   * Kafka no longer holds events the store lost (retention passed them): projecting on would number
   * later events with seqs that clients were already sent for the lost ones. Which topics those events
   * touched is unknown, so every topic gets a new epoch and its clients re-sync: a needless re-sync
   * costs a snapshot, two different entries under one (epoch, seq) would cost the record.
   */
  private async unrecoverable(stream: string, want: bigint, got: bigint): Promise<void> {
    this.log.error({ stream, missing_from: want.toString(), resumed_at: got.toString() }, 'events the store lost are gone from Kafka too; renewing every topic epoch');
    this.projector.invalidate();
    for (const topic of await this.store.topics()) {
      if (!this.renewed.has(topic.epoch)) this.renewed.add(await this.store.renewEpoch(topic.topic, topic.epoch));
    }
  }

  private async onAssignment(assignment: Record<string, number[]>): Promise<void> {
    // Another projector may have written these topics while we did not own them.
    this.projector.invalidate();
    this.applied.clear();
    this.rewound.clear();
    this.lagByPartition.clear();
    const assigned = Object.entries(assignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition, stream: sourceStream(topic, partition) })));
    const offsets = await this.store.sourceOffsets(assigned.map((a) => a.stream));
    for (const { topic, partition, stream } of assigned) {
      const stored = offsets.get(stream);
      if (stored === undefined) {
        // The store holds nothing of this partition (new, or wiped): rebuild it from the start of what Kafka
        // keeps, not from the group's committed offset, which would leave everything before it unprojected.
        this.consumer.seek({ topic, partition, offset: EARLIEST });
        this.log.info({ stream }, 'store holds nothing of this partition: projecting it from the earliest offset Kafka keeps');
        continue;
      }
      this.applied.set(stream, BigInt(stored));
      this.consumer.seek({ topic, partition, offset: (BigInt(stored) + 1n).toString() });
      this.log.info({ stream, offset: stored }, 'resuming partition after stored offset');
    }
  }
}

/** Kafka values are JSON events; anything else is passed on as text so it is dead-lettered, not lost. */
export function parseOrRaw(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
