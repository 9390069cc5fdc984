import type { JsonObject, JsonValue } from '../domain/json.js';
import type { ClientMessage, ClientMessageType, Envelope, EnvelopeType, ErrorEnvelope, ReplayEnd } from './messages.js';

/**
 * The Socket.IO contract as types, for every namespace (`/market`, `/auction`, `/trading`, `/risk`,
 * `/mobile` carry the same events): what a client may emit and what it receives. A dashboard written
 * against them gets a compile error for a wrong event name or field:
 *
 *   import { io, type Socket } from 'socket.io-client';
 *   const market: Socket<ServerToClientEvents, ClientToServerEvents> = io(`${url}/market`, { auth: { token } });
 *   market.on('delta', (env) => env.payload.kind);        // DeltaEnvelope
 *   const ack = await market.emitWithAck('subscribe', { topic: 'prices.IN0020230085' });
 */

/** Delta payload kinds, per topic family (README "Envelope"). */
export const PAYLOAD_KINDS = {
  prices: ['l1', 'l2', 'trade'],
  auctions: ['auction_state', 'auction_bid', 'auction_allotted'],
  trading: ['order'],
  portfolio: ['position'],
  risk: ['metrics', 'breach'],
  /** risk.{user_id}.alerts, and system.alerts (operators). */
  alerts: ['breach_alert', 'system_alert'],
} as const;
export type PayloadKind = (typeof PAYLOAD_KINDS)[keyof typeof PAYLOAD_KINDS][number];
type AlertKind = (typeof PAYLOAD_KINDS)['alerts'][number];

/** A delta's payload: its `kind`, then the fields of that kind (the reducer's delta, README "Envelope"). */
export type DeltaPayload = { kind: Exclude<PayloadKind, AlertKind> } & { [field: string]: JsonValue };
export type AlertPayload = { kind: AlertKind } & { [field: string]: JsonValue };

/** The envelope of one `type`: the standard envelope with that type, and its payload and meta. */
type Typed<T extends EnvelopeType, P extends JsonValue, M extends JsonObject = JsonObject> = Omit<Envelope, 'type' | 'payload' | 'meta'> & { type: T; payload: P; meta: M };

export type SnapshotEnvelope = Typed<'snapshot', JsonObject, { epoch: string; resync?: true; conflated?: { from: number; to: number } } & JsonObject> & { topic: string; seq: number };
export type DeltaEnvelope = Typed<'delta', DeltaPayload, { event_ts: string } & JsonObject> & { topic: string; seq: number };
export type AlertEnvelope = Typed<'alert', AlertPayload, { event_ts: string } & JsonObject> & { topic: string; seq: number };
/** Up to `batch_size` deltas/alerts of one topic, in seq order. */
export type BatchEnvelope = Omit<Typed<'batch', JsonValue, { count: number; first_seq: number; last_seq: number }>, 'payload'> & { topic: string; payload: (DeltaEnvelope | AlertEnvelope)[] };
export type HeartbeatEnvelope = Typed<'heartbeat', { heads: Record<string, number> }, { interval_s: number }>;
export type PongEnvelope = Typed<'pong', JsonObject>;

/** The ack of a replay: the HTTP replay's trailer (what was served, what was missing), and whether it was cut short. */
export type ReplayAck = Omit<ReplayEnd, 'type'> & { action: 'replay'; cancelled: boolean };

/** The ack's payload per message kind. */
export interface AckPayloads {
  /** Resumed or from a snapshot; or superseded by a later subscribe/unsubscribe of the topic (then nothing else). */
  subscribe: { action: 'subscribe'; topic: string; epoch: string; resync: boolean; snapshot_seq?: number; resumed_from?: number } | { action: 'subscribe'; topic: string; superseded: true };
  unsubscribe: { action: 'unsubscribe'; topic: string };
  background_mode: { action: 'background_mode'; enabled: boolean };
  refresh: { action: 'refresh'; expires_at: string };
  /** When the replay ended: what was served and what was missing (the HTTP replay's trailer), or cancelled. */
  replay: ReplayAck;
  replay_stop: { action: 'replay_stop'; stopped: boolean };
}
export type AckEnvelope<K extends keyof AckPayloads = keyof AckPayloads> = Typed<'ack', AckPayloads[K] & JsonObject>;

/** What answers a message of kind K (the ack callback's argument, also emitted as an event). */
export type ReplyTo<K extends ClientMessageType> = (K extends keyof AckPayloads ? AckEnvelope<K> : PongEnvelope) | ErrorEnvelope;

/** Server → client events: one per envelope type. */
export interface ServerToClientEvents {
  snapshot: (envelope: SnapshotEnvelope) => void;
  delta: (envelope: DeltaEnvelope) => void;
  alert: (envelope: AlertEnvelope) => void;
  batch: (envelope: BatchEnvelope) => void;
  ack: (envelope: AckEnvelope) => void;
  pong: (envelope: PongEnvelope) => void;
  heartbeat: (envelope: HeartbeatEnvelope) => void;
  error: (envelope: ErrorEnvelope) => void;
}

/** A client message as emitted: `type` may be left out (the event name says it). */
export type Request<K extends ClientMessageType> = Omit<Extract<ClientMessage, { type: K }>, 'type'> & { type?: K };

/** Client → server events: one per client message kind, with an ack callback receiving the reply. */
export type ClientToServerEvents = { [K in ClientMessageType]: (message: Request<K>, ack: (reply: ReplyTo<K>) => void) => void };

/**
 * What the server's sockets emit: any envelope under its own type. The server builds envelopes
 * generically (gateway/envelope.ts); each event type of ServerToClientEvents is a refinement of it.
 */
export type ServerEmits = { [T in EnvelopeType]: (envelope: Envelope) => void };
