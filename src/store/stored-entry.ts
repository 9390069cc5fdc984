import type { JsonObject } from '../domain/json.js';
import type { HistoryEntry, HistoryRead } from './topic-store.js';

/**
 * A history entry as the store keeps it: its payload still the JSON text the commit wrote
 * (`JSON.stringify(payload)`, src/store/redis/scripts.ts). A replay splices that text into its lines
 * instead of parsing and serialising each payload again (src/gateway/envelope.ts `replayLine`); every
 * other reader gets the parsed entry (`entryOfStored`).
 */
export type StoredEntry = Omit<HistoryEntry, 'payload'> & { payloadJson: string };

export type StoredRead = Omit<HistoryRead, 'entries'> & { entries: StoredEntry[] };

/** A store that can hand out its history with the payloads as stored. */
export interface StoredHistory {
  /** readAfter's answer, payloads as stored. */
  readStoredAfter(topic: string, afterSeq: number, limit: number): Promise<StoredRead>;
}

/** The stored form of an entry (what the commit wrote): the payload as its JSON text. */
export function storedEntryOf(e: HistoryEntry): StoredEntry {
  // Field by field, not a rest spread: this runs once per rebuilt entry.
  return { topic: e.topic, epoch: e.epoch, seq: e.seq, type: e.type, ts: e.ts, event_ts: e.event_ts, event_id: e.event_id, payloadJson: JSON.stringify(e.payload), hash: e.hash };
}

/** The entry of a stored one, its payload parsed; a payload that is not an object with a `kind`, or another type, is a malformed entry. */
export function entryOfStored(stored: StoredEntry): HistoryEntry {
  const { payloadJson, ...rest } = stored;
  const payload: unknown = JSON.parse(payloadJson);
  if ((rest.type !== 'delta' && rest.type !== 'alert') || typeof payload !== 'object' || payload === null || Array.isArray(payload) || typeof (payload as JsonObject).kind !== 'string') {
    throw new Error(`malformed history entry ${rest.seq} of topic ${rest.topic}`);
  }
  return { ...rest, payload: payload as JsonObject & { kind: string } };
}
