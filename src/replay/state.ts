import { ClientError } from '../protocol/errors.js';
import type { Snapshot, TopicStore } from '../store/topic-store.js';
import { KafkaHistory, type KafkaHistoryOptions } from './kafka-history.js';

/**
 * A topic's state as of an instant (`GET /api/v1/replay/state`, `bondx replay --at`): the snapshot after
 * the last entry committed at or before `at`, with that entry's seq — what a client subscribing then was
 * sent. At or after the last entry it is the store's current snapshot; before, it is rebuilt from Kafka
 * (the newest replay checkpoint at or before `at`, re-projected forward). Before the topic's first entry:
 * seq 0 and an empty state, as a subscribe to a topic with no entries answers.
 */
export async function stateAt(store: Pick<TopicStore, 'snapshot' | 'readAfter'>, kafka: KafkaHistoryOptions | undefined, topic: string, at: string): Promise<Snapshot> {
  const snapshot = await store.snapshot(topic);
  const [last] = snapshot && snapshot.seq > 0 ? (await store.readAfter(topic, snapshot.seq - 1, 1)).entries : [];
  if (snapshot && last?.seq === snapshot.seq && last.epoch === snapshot.epoch && last.ts <= at) return snapshot;
  const history = kafka ? new KafkaHistory(kafka) : undefined;
  if (!history?.covers(topic)) {
    throw new ClientError('NOT_IMPLEMENTED', {
      reason: "the state before the last entry (or of a topic the store does not hold) is rebuilt from Kafka, which this server does not have (KAFKA_BROKERS): ask for at >= the last entry's ts",
      topic,
      at,
      last_entry_ts: last?.ts ?? null,
    });
  }
  // The epoch the oldest held entry was committed in is the one the rebuilt history is in (as for ranges).
  const held = await store.readAfter(topic, 0, 1);
  try {
    const state = await history.stateAt(topic, held.entries[0]?.epoch ?? held.epoch, at);
    return state.seq === 0 ? { ...state, ts: at } : state;
  } finally {
    await history.close();
  }
}
