import type { JsonObject } from '../domain/json.js';
import { parseOrRaw } from '../ingest/kafka/projector-consumer.js';
import { recordTime } from '../ingest/kafka/routing.js';
import { validateEvent } from '../ingest/validate.js';
import { project, topicsFor } from '../projector/project.js';
import { chainEntries } from '../store/chain.js';
import { commitTime, type ChainHead, type HistoryEntry } from '../store/topic-store.js';

/**
 * Re-projection of one topic from its Kafka partition (README "Audit and replay", rebuild): the records
 * the projector consumed, folded with the same validation, reducers and chain (src/store/chain.ts) the
 * stores commit through, onto a known head. What comes out is what the store committed: same seq, ts
 * (the record timestamp, raised to the previous entry's), payload, event_id, epoch and hash. Pure: the
 * records come from any iterable, so the fold is tested without Kafka.
 */

/** One Kafka record of the topic's partition, as a consumer hands it over. */
export interface SourceRecord {
  offset: string;
  /** Record timestamp, ms since the epoch as text (-1: none). */
  timestamp: string;
  value: Buffer | null;
}

/** Where a rebuild starts: a chain head and the topic's state there (undefined: the topic did not exist yet). */
export interface RebuildStart {
  head: ChainHead;
  state: JsonObject | undefined;
}

/** A rebuilt entry with the topic's state after it and the record it came from. */
export interface RebuiltEntry {
  entry: HistoryEntry;
  state: JsonObject;
  offset: string;
}

/**
 * The topic's entries after `start`, in seq order, from `batches` of records (the partition from just after the
 * start's offset). Records the projector would have dead-lettered (not JSON, invalid, rejected by a
 * reducer) or that touch other topics give none; an event id seen again gives none (the store's
 * de-duplication, which keeps a window of ids: see the README on what a rebuild cannot know).
 */
export async function* rebuildTopic(topic: string, batches: AsyncIterable<readonly SourceRecord[]>, start: RebuildStart): AsyncGenerator<RebuiltEntry> {
  let head = start.head;
  let state = start.state;
  const seen = new Set<string>();
  // The reducers' and the chain's view of this one topic, reused for every record (neither keeps them).
  const states = new Map<string, JsonObject>();
  const heads = new Map<string, ChainHead>();
  const epoch = () => head.epoch;
  // Batch by batch, as the consumer hands them over: one await per batch, not per record.
  for await (const batch of batches) {
    for (const record of batch) {
      const validation = validateEvent(parseOrRaw(record.value?.toString('utf8') ?? ''));
      if (!validation.ok) continue;
      const event = validation.event;
      if (!topicsFor(event).includes(topic) || seen.has(event.event_id)) continue;
      if (state !== undefined) states.set(topic, state);
      const { changes, rejected } = project(event, states);
      if (rejected !== undefined) continue;
      seen.add(event.event_id);
      const change = changes.find((c) => c.topic === topic);
      if (!change) continue;
      heads.set(topic, head);
      // The head's epoch: a rebuild continues the chain it starts on, it never opens one.
      const [entry] = chainEntries({ eventId: event.event_id, eventTs: event.ts, committedAt: commitTime({ stream: '', offset: record.offset, ...recordTime(record.timestamp) }), changes: [change] }, heads, epoch);
      if (!entry) continue;
      head = entry;
      state = change.state;
      yield { entry, state, offset: record.offset };
    }
  }
}
