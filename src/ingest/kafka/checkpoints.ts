import type { Kafka, Producer } from 'kafkajs';
import type { JsonObject } from '../../domain/json.js';
import type { Logger } from '../../observability/logger.js';
import type { CommittedHead } from '../ingest.js';
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
    private readonly log: Logger,
  ) {}

  /**
   * After a record's commit: the heads it left (with the states) of topics that reached a checkpoint
   * seq. Taken from the commit itself, not read back: the record's run may have moved the topic on since.
   */
  async committed(heads: readonly CommittedHead[], partition: number, offset: string): Promise<void> {
    const due = heads.filter((head) => head.seq % this.every === 0);
    if (due.length === 0) return;
    const messages = due.map(({ topic, epoch, seq, ts, hash, state }) => {
      const checkpoint: ReplayCheckpoint = { topic, epoch, seq, ts, hash, state, partition, offset };
      return { key: topic, value: JSON.stringify(checkpoint) };
    });
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
