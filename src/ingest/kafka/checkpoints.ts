import type { Kafka, Producer } from 'kafkajs';
import type { JsonObject } from '../../domain/json.js';
import type { Logger } from '../../observability/logger.js';
import type { TopicStore } from '../../store/topic-store.js';
import { partitionCount, readPartition } from './partition-reader.js';
import { kafkaTopic, partitionOf } from './routing.js';

/**
 * Replay checkpoints (README "Audit and replay", rebuild from Kafka): every `REPLAY_CHECKPOINT_EVERY`
 * entries of a topic the projector writes the topic's head and state there, with the source record
 * (partition, offset) that produced it, to the Kafka topic `<prefix>.checkpoints`. A rebuild starts from
 * the nearest one at or before the range asked for instead of the partition's start. They live in Kafka,
 * beside the events they summarise, so a Redis loss does not take them: keyed by topic (one partition
 * holds a topic's checkpoints, in order), kept forever (retention.ms=-1, no compaction: every
 * checkpoint is a distinct start point, compaction by topic would keep only the newest).
 */

export interface ReplayCheckpoint {
  topic: string;
  epoch: string;
  seq: number;
  /** The entry's ts and hash: the chain head a rebuild continues from. */
  ts: string;
  hash: string;
  /** The topic's state after entry `seq`. */
  state: JsonObject;
  /** The Kafka partition of the topic's events and the offset of the record that committed `seq`. */
  partition: number;
  offset: string;
}

export function checkpointsTopic(prefix: string): string {
  return kafkaTopic(prefix, 'checkpoints');
}

/** Writes a checkpoint of each topic whose new entry's seq is a multiple of `every`. */
export class CheckpointWriter {
  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly every: number,
    private readonly store: TopicStore,
    private readonly log: Logger,
  ) {}

  /**
   * After a record's commit: its entries' topics that reached a checkpoint seq. The state is read back
   * from the store (only then, every `every` entries): nothing else writes the topic before the next
   * record of this partition, so the head read is the one the entry left; if not, no checkpoint.
   */
  async committed(entries: readonly { topic: string; seq: number }[], partition: number, offset: string): Promise<void> {
    const due = entries.filter((e) => e.seq % this.every === 0);
    if (due.length === 0) return;
    const heads = await this.store.states(due.map((e) => e.topic));
    const messages = due.flatMap(({ topic, seq }) => {
      const head = heads.get(topic);
      if (head?.seq !== seq) return [];
      const checkpoint: ReplayCheckpoint = { topic, epoch: head.epoch, seq, ts: head.ts, hash: head.hash, state: head.state, partition, offset };
      return [{ key: topic, value: JSON.stringify(checkpoint) }];
    });
    if (messages.length === 0) return;
    await this.producer.send({ topic: this.topic, messages });
    this.log.debug({ topics: due.map((e) => e.topic), partition, offset }, 'replay checkpoint written');
  }
}

/** A topic's checkpoints, oldest first: the checkpoints partition its key maps to, read to its end. */
export async function readCheckpoints(kafka: Kafka, prefix: string, groupPrefix: string, topic: string): Promise<ReplayCheckpoint[]> {
  const out: ReplayCheckpoint[] = [];
  const partitions = await partitionCount(kafka, checkpointsTopic(prefix));
  if (partitions === 0) return out;
  for await (const batch of readPartition(kafka, groupPrefix, checkpointsTopic(prefix), partitionOf(topic, partitions))) {
    for (const record of batch) {
      if (record.key?.toString('utf8') !== topic || !record.value) continue;
      out.push(JSON.parse(record.value.toString('utf8')) as ReplayCheckpoint);
    }
  }
  return out;
}
