import { applyDelta, initialState, isDeltaKind, type DeltaPayload, type StateOf } from '../domain/deltas/index.js';
import type { JsonObject } from '../domain/json.js';
import { ClientError } from '../protocol/errors.js';
import type { HistoryEntry, Snapshot, TopicStore } from '../store/topic-store.js';
import { KafkaHistory, type KafkaHistoryOptions } from './kafka-history.js';
import { firstAtOrAfter } from './range.js';

/**
 * A topic's state as of an instant (`GET /api/v1/replay/state`, `bondx replay --at`): the snapshot after
 * the last entry committed at or before `at`, with that entry's seq — what a client subscribing then was
 * sent. At or after the last entry it is the store's current snapshot. Within the held history it is
 * found by binary search over the seqs by commit time and folded (applyDelta, which gives the reducers'
 * state: test/unit/deltas.test.ts) from the nearest start whose later entries are all held: the newest
 * replay checkpoint (Kafka) at or before it, or the topic's initial state for a history held from seq 1.
 * Otherwise it is rebuilt from Kafka (the newest checkpoint at or before `at`, re-projected forward).
 * Before the topic's first entry: seq 0 and an empty state, as a subscribe to a topic with no entries answers.
 */

type StateStore = Pick<TopicStore, 'snapshot' | 'readAfter'>;

/** Entries per read while folding (at most a checkpoint interval is folded when checkpoints exist). */
const FOLD_PAGE = 1000;

export async function stateAt(store: StateStore, kafka: KafkaHistoryOptions | undefined, topic: string, at: string): Promise<Snapshot> {
  const snapshot = await store.snapshot(topic);
  const [last] = snapshot && snapshot.seq > 0 ? (await store.readAfter(topic, snapshot.seq - 1, 1)).entries : [];
  if (snapshot && last?.seq === snapshot.seq && last.epoch === snapshot.epoch && last.ts <= at) return snapshot;
  const history = kafka ? new KafkaHistory(kafka) : undefined;
  try {
    const held = await heldStateAt(store, history?.covers(topic) ? history : undefined, topic, at);
    if (held) return held;
    if (!history?.covers(topic)) {
      throw new ClientError('NOT_IMPLEMENTED', {
        reason: "the state before the history the store holds from seq 1 (or of a topic the store does not hold) is rebuilt from Kafka, which this server does not have (KAFKA_BROKERS): ask for an instant within the held history, or at >= the last entry's ts",
        topic,
        at,
        last_entry_ts: last?.ts ?? null,
      });
    }
    // The epoch the oldest held entry was committed in is the one the rebuilt history is in (as for ranges).
    const oldest = await store.readAfter(topic, 0, 1);
    const state = await history.stateAt(topic, oldest.entries[0]?.epoch ?? oldest.epoch, at);
    return state.seq === 0 ? { ...state, ts: at } : state;
  } finally {
    await history?.close();
  }
}

/**
 * The answer from the held history, when it holds the instant and a start to fold from; undefined when
 * not (then Kafka rebuilds it). About log2(held entries) single-entry reads, the checkpoints' read, and
 * at most one checkpoint interval of entries folded.
 */
async function heldStateAt(store: StateStore, history: KafkaHistory | undefined, topic: string, at: string): Promise<Snapshot | undefined> {
  const held = await store.readAfter(topic, 0, 1);
  const first = held.entries[0];
  if (!first) return undefined;
  if (first.ts > at) return first.seq === 1 ? { topic, epoch: first.epoch, seq: 0, ts: at, state: {} } : undefined;
  const entryAt = async (seq: number): Promise<HistoryEntry | undefined> => {
    const [entry] = (await store.readAfter(topic, seq - 1, 1)).entries;
    return entry?.seq === seq ? entry : undefined;
  };
  // Commit times have millisecond precision: "after at" is "at or after at + 1 ms".
  const after = new Date(Date.parse(at) + 1).toISOString();
  const seq = (await firstAtOrAfter(after, held.firstSeq, held.headSeq, async (s) => (await entryAt(s))?.ts)) - 1;
  const entry = await entryAt(seq);
  if (!entry) return undefined;
  const checkpoint = history && (await history.checkpoints(topic)).filter((c) => c.epoch === entry.epoch && c.seq <= seq && c.seq >= held.firstSeq - 1).at(-1);
  const start = checkpoint ? { seq: checkpoint.seq, state: checkpoint.state } : held.firstSeq === 1 ? { seq: 0, state: initialState(topic) } : undefined;
  if (!start?.state) return undefined;
  const state = await fold(store, topic, entry.epoch, start.seq, start.state, seq);
  return state && { topic, epoch: entry.epoch, seq, ts: entry.ts, state };
}

/**
 * The state after entry `to` of `epoch`: `state` (after `from`) with the entries from+1..to applied as the
 * reducers built them; undefined if one is missing, of another epoch or not a delta. The one fold of
 * history into a state (state at an instant here; `audit shown` at a delivered seq).
 */
export async function fold(store: Pick<TopicStore, 'readAfter'>, topic: string, epoch: string, from: number, state: JsonObject, to: number): Promise<JsonObject | undefined> {
  let folded = state as StateOf<DeltaPayload>;
  for (let next = from + 1; next <= to; ) {
    const { entries } = await store.readAfter(topic, next - 1, Math.min(FOLD_PAGE, to - next + 1));
    if (entries.length === 0) return undefined;
    for (const entry of entries) {
      if (entry.seq !== next || entry.epoch !== epoch || !isDeltaKind(entry.payload.kind)) return undefined;
      folded = applyDelta(folded, entry.payload as DeltaPayload);
      next++;
    }
  }
  return folded as JsonObject;
}
