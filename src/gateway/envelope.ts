import { jsonString, type JsonObject, type JsonValue } from '../domain/json.js';
import { ERRORS, type ErrorCode } from '../protocol/errors.js';
import type { Envelope, ErrorEnvelope } from '../protocol/messages.js';
import type { StoredEntry } from '../store/stored-entry.js';
import type { HistoryEntry, Snapshot } from '../store/topic-store.js';

/** Builders for every envelope the server sends, so both transports produce identical messages. */

/** `integrity`: with `meta.hash`, the entry's hash-chain link (replay lines, subscribers that ask for it). */
export function entryEnvelope(entry: HistoryEntry, integrity = false): Envelope {
  return {
    type: entry.type,
    topic: entry.topic,
    seq: entry.seq,
    ts: entry.ts,
    payload: entry.payload,
    // The epoch too: a replayed line must be exactly this envelope, and says which numbering its seq is in.
    meta: integrity ? { event_ts: entry.event_ts, epoch: entry.epoch, hash: entry.hash } : { event_ts: entry.event_ts, epoch: entry.epoch },
    correlation_id: entry.event_id,
  };
}

/** A replayed line: the live envelope of an integrity subscriber, so an auditor can recompute the chain. */
export const replayEnvelope = (entry: HistoryEntry): Envelope => entryEnvelope(entry, true);

/**
 * `JSON.stringify(replayEnvelope(entryOfStored(stored)))` without parsing the payload: its stored text is
 * spliced in. The same bytes because the store wrote that text with `JSON.stringify` (whose output
 * parses and serialises back to itself) and the fields go in replayEnvelope's order; tested against it
 * over arbitrary payloads (test/unit/replay-line.test.ts). The replay's hot path: one line per entry.
 */
export function replayLine(e: StoredEntry): string {
  const meta = `{"event_ts":${jsonString(e.event_ts)},"epoch":${jsonString(e.epoch)},"hash":${jsonString(e.hash)}}`;
  return `{"type":"${e.type}","topic":${jsonString(e.topic)},"seq":${e.seq},"ts":${jsonString(e.ts)},"payload":${e.payloadJson},"meta":${meta},"correlation_id":${jsonString(e.event_id)}}`;
}

/** The entry a replayed line was made from (replayEnvelope's inverse); undefined when the line is not one. */
export function entryOfEnvelope(envelope: Envelope): HistoryEntry | undefined {
  const { type, topic, seq, ts, payload, meta, correlation_id } = envelope;
  if ((type !== 'delta' && type !== 'alert') || topic === null || seq === null || correlation_id === null) return undefined;
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload) || typeof payload.kind !== 'string') return undefined;
  const { epoch, event_ts, hash } = meta;
  if (typeof epoch !== 'string' || typeof event_ts !== 'string' || typeof hash !== 'string') return undefined;
  return { topic, epoch, seq, type, ts, event_ts, event_id: correlation_id, payload: payload as JsonObject & { kind: string }, hash };
}

/** Several entries of one topic in one frame: fewer packets, one serialisation for all of them. */
export function batchEnvelope(topic: string, envelopes: Envelope[]): Envelope {
  const first = envelopes[0]?.seq ?? null;
  const last = envelopes[envelopes.length - 1]?.seq ?? null;
  return {
    type: 'batch',
    topic,
    seq: last,
    ts: new Date().toISOString(),
    payload: envelopes as unknown as JsonValue,
    meta: { count: envelopes.length, first_seq: first, last_seq: last },
    correlation_id: null,
  };
}

/** `marks`: `resync: true` after lost history, `conflated: {from, to}` when it replaces skipped deltas. */
export function snapshotEnvelope(snapshot: Snapshot, state: JsonObject, marks: JsonObject, correlationId: string | null): Envelope {
  return {
    type: 'snapshot',
    topic: snapshot.topic,
    seq: snapshot.seq,
    ts: snapshot.ts,
    payload: state,
    meta: { epoch: snapshot.epoch, ...marks },
    correlation_id: correlationId,
  };
}

export function controlEnvelope(
  type: 'ack' | 'pong' | 'heartbeat' | 'ping',
  payload: JsonValue,
  opts: { topic?: string; seq?: number; meta?: JsonObject; correlationId?: string | null } = {},
): Envelope {
  return {
    type,
    topic: opts.topic ?? null,
    seq: opts.seq ?? null,
    ts: new Date().toISOString(),
    payload,
    meta: opts.meta ?? {},
    correlation_id: opts.correlationId ?? null,
  };
}

/**
 * The documented error shape: standard envelope fields plus top-level `error`, `code`, `details`,
 * `timestamp` (what existing BondX clients read), and the same in `payload` for envelope readers.
 */
export function errorEnvelope(code: ErrorCode, rawDetails: Record<string, unknown> = {}, correlationId: string | null = null, message: string = ERRORS[code].message): ErrorEnvelope {
  const ts = new Date().toISOString();
  // Details come from anywhere (validation output, limits): keep only their JSON form.
  const details = JSON.parse(JSON.stringify(rawDetails)) as JsonObject;
  const topic = typeof details.topic === 'string' ? details.topic : null;
  return {
    type: 'error',
    topic,
    seq: null,
    ts,
    payload: { error: message, code, details },
    meta: {},
    correlation_id: correlationId,
    error: message,
    code,
    details,
    timestamp: ts,
  };
}
