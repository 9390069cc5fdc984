import type { JsonObject, JsonValue } from '../domain/json.js';
import type { ErrorCode } from './errors.js';

/**
 * Server -> client envelope (the product's standard message envelope). A `batch` envelope carries
 * several `delta`/`alert` envelopes of one topic, in seq order, in its payload (opt-in via batch_size).
 */
export type EnvelopeType = 'snapshot' | 'delta' | 'alert' | 'ack' | 'error' | 'ping' | 'pong' | 'heartbeat' | 'batch';

export interface Envelope {
  type: EnvelopeType;
  topic: string | null;
  seq: number | null;
  ts: string;
  payload: JsonValue;
  meta: JsonObject;
  correlation_id: string | null;
}

/** Error envelope: the standard envelope plus top-level `error`/`code`/`details`/`timestamp`, as BondX clients read them. */
export interface ErrorEnvelope extends Envelope {
  type: 'error';
  error: string;
  code: ErrorCode;
  details: JsonObject;
  timestamp: string;
}

/**
 * Replays (HTTP and live) report what they served and what of the asked range they did not, in these
 * wire shapes (src/replay computes them).
 *
 * Why part of an asked range is not in the answer:
 * - `trimmed`: committed, but older than the first seq the store still holds (HISTORY_MAX_LEN);
 * - `beyond_head`: not committed (yet), or no longer: the store's head went back while replaying;
 * - `epoch_changed`: the topic got a new epoch while replaying, so its seqs are another numbering.
 */
export type MissingReason = 'trimmed' | 'beyond_head' | 'epoch_changed';

/** A type, not an interface, so it is a JsonValue (a replay ack carries it). */
export type MissingPart = {
  from_seq: number;
  /** null: open-ended (`from_seq` beyond the head, with no `to_seq`). */
  to_seq: number | null;
  reason: MissingReason;
};

/** The last line of an NDJSON replay (and the HTTP `x-replay-end` trailer of both formats). */
export type ReplayEnd = {
  type: 'replay_end';
  topic: string;
  epoch: string | null;
  /** The seqs served, first and last (null: none). */
  from_seq: number | null;
  to_seq: number | null;
  count: number;
  /** The store's history when the replay started. */
  first_seq: number;
  head_seq: number;
  /** The range asked for: `{from_seq, to_seq}` or `{since, until}` (null: unbounded). */
  asked: { from_seq: number; to_seq: number | null } | { since: string | null; until: string | null };
  missing: MissingPart[];
};

/** Client -> server messages. */
export interface Subtopics {
  /** Comma list of `L1`, `L2`; default both. */
  levels?: string;
  /** Whether trades are delivered; default true. */
  trades?: boolean;
}

export interface SubscribeMessage {
  type: 'subscribe';
  topic: string;
  subtopics?: Subtopics;
  /** Last seq the client holds; the server sends seq+1… then live, or a re-sync snapshot. */
  resume_from_seq?: number;
  /** The epoch the client's seq belongs to (from a previous snapshot's meta); a mismatch forces re-sync. */
  epoch?: string;
  compression?: boolean;
  batch_size?: number;
  /** Deltas and alerts carry `meta.hash`, their link in the topic's hash chain (others do not pay the bytes). */
  integrity?: boolean;
  correlation_id?: string;
}

export interface UnsubscribeMessage {
  type: 'unsubscribe';
  topic: string;
  correlation_id?: string;
}

export interface PingMessage {
  type: 'ping';
  correlation_id?: string;
}

export interface BackgroundModeMessage {
  type: 'background_mode';
  enabled: boolean;
  correlation_id?: string;
}

/** A fresh JWT for the same user, sent before the connection's token expires, so the connection lives on. */
export interface RefreshMessage {
  type: 'refresh';
  token: string;
  correlation_id?: string;
}

/** Plays a topic's history (README "Audit and replay") alongside the live subscriptions; answered by an ack when it ends. */
export interface ReplayMessage {
  type: 'replay';
  topic: string;
  /** Default 1. */
  from_seq?: number;
  /** Inclusive; absent: up to the head when the replay starts. */
  to_seq?: number;
  /** By commit time instead of seq (ISO-8601, as the HTTP replay's since/until): inclusive. */
  since?: string;
  /** Exclusive. */
  until?: string;
  /** Recorded pace times this (default 1); 0: as fast as the client reads. */
  speed?: number;
  correlation_id?: string;
}

/** Cancels the connection's running replay. */
export interface ReplayStopMessage {
  type: 'replay_stop';
  correlation_id?: string;
}

export type ClientMessage = SubscribeMessage | UnsubscribeMessage | PingMessage | BackgroundModeMessage | RefreshMessage | ReplayMessage | ReplayStopMessage;

export type ClientMessageType = ClientMessage['type'];

/** Total over ClientMessageType (and no other key): a message type can not be left out of the list. */
const KINDS: Record<ClientMessageType, true> = { subscribe: true, unsubscribe: true, ping: true, background_mode: true, refresh: true, replay: true, replay_stop: true };

/**
 * Every kind of client message, once: parsing (one schema each in schemas/client/), the received-messages
 * metric and the Socket.IO event handlers all take it from here.
 */
export const CLIENT_MESSAGE_KINDS = Object.keys(KINDS) as ClientMessageType[];

export function isClientMessageKind(kind: string): kind is ClientMessageType {
  return Object.hasOwn(KINDS, kind);
}
