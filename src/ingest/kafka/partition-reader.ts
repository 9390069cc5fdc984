import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';

/** One record of a partition, as the readers here hand it over. */
export interface PartitionRecord {
  offset: string;
  key: Buffer | null;
  /** Record timestamp, ms since the epoch as text (-1: none). */
  timestamp: string;
  value: Buffer | null;
}

/** Batches buffered ahead of the reader before the consumer waits (backpressure). */
const MAX_BUFFERED_BATCHES = 8;

/**
 * A partition's records from `from` (undefined: its earliest) up to its end as it is when the read starts,
 * in offset order, batch by batch. kafkajs consumes only through a group, so each read joins a group of
 * its own (no offsets committed) and seeks the one partition; the read waits while the caller is behind.
 */
export async function* readPartition(kafka: Kafka, groupPrefix: string, topic: string, partition: number, from?: bigint): AsyncGenerator<PartitionRecord[]> {
  const bounds = await partitionBounds(kafka, topic, partition);
  const start = from === undefined || from < bounds.low ? bounds.low : from;
  if (start >= bounds.high) return;
  const end = bounds.high;
  const batches: PartitionRecord[][] = [];
  let done = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const signal = () => {
    wake?.();
    wake = undefined;
  };
  const consumer = kafka.consumer({ groupId: `${groupPrefix}.${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 20 });
  consumer.on(consumer.events.CRASH, (e) => {
    failed = e.payload.error;
    signal();
  });
  let next = start;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat, isRunning }) => {
        // Other partitions of the topic start at their end: only new records, ignored. Before the seek
        // lands this partition may also be fetched from its end: those records are past `end`.
        if (batch.partition !== partition || done || BigInt(batch.firstOffset() ?? end) > next) return;
        const records: PartitionRecord[] = [];
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < next || offset >= end) continue;
          records.push({ offset: m.offset, key: m.key, timestamp: m.timestamp, value: m.value });
          next = offset + 1n;
        }
        if (records.length > 0) batches.push(records);
        if (BigInt(batch.lastOffset()) >= end - 1n) done = true;
        signal();
        while (batches.length >= MAX_BUFFERED_BATCHES && isRunning()) {
          await new Promise<void>((resolve) => setTimeout(resolve, 5));
          await heartbeat();
        }
      },
    });
    consumer.seek({ topic, partition, offset: start.toString() });
    for (;;) {
      const batch = batches.shift();
      if (batch) {
        yield batch;
        continue;
      }
      if (failed) throw failed;
      if (done) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    await consumer.disconnect();
  }
}

/** The first offset a partition still holds and the one after its last. */
export async function partitionBounds(kafka: Kafka, topic: string, partition: number): Promise<{ low: bigint; high: bigint }> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    const p = offsets.find((o) => o.partition === partition);
    if (!p) throw new Error(`Kafka topic ${topic} has no partition ${partition}`);
    return { low: BigInt(p.low), high: BigInt(p.high) };
  } finally {
    await admin.disconnect();
  }
}

/** How many partitions a topic has (0: no such topic). */
export async function partitionCount(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0;
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    return meta?.partitions.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}
