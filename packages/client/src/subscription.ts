import { applyDelta, bookMatches, initialState, isDeltaKind, type Book, type DeltaPayload, type DeltaTopicKind, type StateOf, type TopicTypes } from '../../../src/domain/deltas/index.js';
import type { JsonObject } from '../../../src/domain/json.js';
import type { TopicKind } from '../../../src/domain/topics.js';
import type { ClientMessage, Envelope, ErrorEnvelope, SubscribeMessage, Subtopics } from '../../../src/protocol/messages.js';
import type { AlertEnvelope, DeltaEnvelope, SnapshotEnvelope } from '../../../src/protocol/socketio-events.js';
import { Emitter } from './emitter.js';
import { BondxError } from './errors.js';

/** The topic kind a topic name stands for, at the type level (`prices.X` → `prices`, `risk.U.alerts` → `risk_alerts`, …). */
export type TopicKindOf<T extends string> = T extends 'system.alerts'
  ? 'system_alerts'
  : T extends `risk.${string}.alerts`
    ? 'risk_alerts'
    : T extends `prices.${string}`
      ? 'prices'
      : T extends `auctions.${string}`
        ? 'auctions'
        : T extends `trading.${string}`
          ? 'trading'
          : T extends `portfolio.${string}`
            ? 'portfolio'
            : T extends `risk.${string}`
              ? 'risk'
              : T extends `mobile.${string}`
                ? 'mobile'
                : TopicKind;

/** A topic kind's state (the server's snapshot, with every delta applied); plain JSON for kinds without deltas to apply. */
export type StateFor<K extends TopicKind> = K extends DeltaTopicKind ? TopicTypes[K]['state'] : JsonObject;
export type PayloadFor<K extends TopicKind> = K extends DeltaTopicKind ? TopicTypes[K]['delta'] : JsonObject & { kind: string };

/** A delta (or alert) of a topic of kind K, its payload typed by kind. */
export type DeltaEvent<K extends TopicKind> = Omit<DeltaEnvelope | AlertEnvelope, 'payload'> & { payload: PayloadFor<K> };

export interface SubscriptionEvents<K extends TopicKind> {
  /** The first snapshot: `state` is now the server's at `seq`. */
  snapshot: SnapshotEnvelope;
  /** The next seq (never a duplicate, never out of order), already applied to `state`. */
  delta: DeltaEvent<K>;
  /**
   * A later snapshot replaced `state`: the server re-synced (`meta.resync`: history lost, epoch changed,
   * topic reset), conflated a slow client (`meta.conflated`), or the SDK asked for one because the local order
   * book no longer hashed to the server's checksum (a snapshot without either mark).
   */
  resync: SnapshotEnvelope;
  error: BondxError;
}

export interface SubscribeOptions {
  subtopics?: Subtopics;
  /** Up to this many deltas per frame (the SDK unpacks them; `delta` events stay one per seq). */
  batchSize?: number;
}

/** What a subscription needs from the connection carrying it. */
export interface SubscriptionLink {
  /** Sends a message now if the connection is open, and says whether it did (subscribes are sent again on every (re)connect). */
  send(message: ClientMessage): boolean;
  retryLater(sub: LinkedSubscription): void;
  remove(sub: LinkedSubscription): void;
}

/** What the connection needs from a subscription, whatever its topic kind. */
export interface LinkedSubscription {
  readonly topic: string;
  readonly closed: boolean;
  subscribeMessage(): SubscribeMessage;
  resumeToken(): string | undefined;
  detached(): void;
  receive(env: Envelope): void;
  heartbeat(head: number): void;
  fail(error: BondxError): void;
}

let correlationCounter = 0;
export const nextCorrelation = () => `bx-${Date.now().toString(36)}-${++correlationCounter}`;

/** Refusals of one subscribe that another attempt would not change: the subscription ends. */
export const FINAL: ReadonlySet<string> = new Set(['FORBIDDEN', 'INVALID_TOPIC', 'INVALID_MESSAGE', 'PAYLOAD_TOO_LARGE']);

/**
 * One topic followed exactly once, in order, across reconnects. It holds `(epoch, seq)` and the state;
 * every (re)connect subscribes with `resume_from_seq` + `epoch`, so the server sends seq+1… or a re-sync
 * snapshot. Entries at or below `seq` are duplicates and dropped; a jump past seq+1 (or a heartbeat head
 * that stays ahead) on an unfiltered subscription is a gap, answered with a resume. While a subscribe is
 * outstanding only the contiguous next seq is taken, and only within the epoch held (a WebSocket path's own
 * subscription can still be speaking; see client.ts).
 */
export class Subscription<K extends TopicKind> extends Emitter<SubscriptionEvents<K>> implements LinkedSubscription {
  private current: StateFor<K> | undefined;
  private heldSeq: number | null = null;
  private heldEpoch: string | null = null;
  /** Correlation id of the subscribe the server has not answered yet. */
  private pending: string | null = null;
  /** The outstanding subscribe asked for a snapshot: nothing applies before it arrives. */
  private awaitingSnapshot = false;
  /** While a subscribe is outstanding, another subscription of this topic announced a different epoch. */
  private foreignEpoch = false;
  /** A heartbeat head above `seq`: if the next heartbeat finds seq still below it, entries were lost. */
  private suspectHead: number | undefined;
  private snapshots = 0;
  private ended = false;
  /** Prices subscriptions with subtopics skip the seqs of the parts they left out: seq jumps are normal there. */
  readonly filtered: boolean;

  constructor(
    readonly topic: string,
    readonly kind: K,
    readonly options: SubscribeOptions,
    private readonly link: SubscriptionLink,
    onListenerError: (err: unknown) => void,
  ) {
    super(onListenerError);
    const { levels = 'L1,L2', trades } = options.subtopics ?? {};
    const parts = new Set(levels.split(',').map((l) => l.trim().toUpperCase()));
    this.filtered = kind === 'prices' && (!parts.has('L1') || !parts.has('L2') || trades === false);
  }

  /** The server's state at `seq`, every delta applied; undefined until the first snapshot. */
  get state(): StateFor<K> | undefined {
    return this.current;
  }

  get seq(): number | null {
    return this.heldSeq;
  }

  get epoch(): string | null {
    return this.heldEpoch;
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Stops following the topic. */
  unsubscribe(): void {
    if (this.ended) return;
    this.ended = true;
    this.link.send({ type: 'unsubscribe', topic: this.topic, correlation_id: nextCorrelation() });
    this.link.remove(this);
  }

  /** The subscribe to send on (re)connect: a resume from what is held, or (`fresh`) a request for a snapshot. */
  subscribeMessage(fresh = false): SubscribeMessage {
    const resume = !fresh && this.heldSeq !== null;
    this.pending = nextCorrelation();
    this.awaitingSnapshot = !resume;
    this.foreignEpoch = false;
    this.suspectHead = undefined;
    return {
      type: 'subscribe',
      topic: this.topic,
      correlation_id: this.pending,
      ...(this.options.subtopics ? { subtopics: this.options.subtopics } : {}),
      ...(this.options.batchSize ? { batch_size: this.options.batchSize } : {}),
      ...(resume ? { resume_from_seq: this.heldSeq as number, ...(this.heldEpoch ? { epoch: this.heldEpoch } : {}) } : {}),
    };
  }

  /** `resume_from_seq@epoch` for a WebSocket path's `?resume=`, when something is held. */
  resumeToken(): string | undefined {
    return this.heldSeq === null ? undefined : `${this.topic}@${this.heldSeq}${this.heldEpoch ? `@${this.heldEpoch}` : ''}`;
  }

  /** The connection went away: whatever was outstanding is asked again on the next one. */
  detached(): void {
    this.pending = null;
    this.suspectHead = undefined;
  }

  /** Handles one envelope of this topic (batches already unpacked) or the reply to one of its requests. */
  receive(env: Envelope): void {
    if (this.ended) return;
    switch (env.type) {
      case 'snapshot':
        this.onSnapshot(env as SnapshotEnvelope);
        break;
      case 'delta':
      case 'alert':
        this.onEntry(env as DeltaEnvelope | AlertEnvelope);
        break;
      case 'ack':
        if (env.correlation_id === this.pending) this.pending = null;
        break;
      case 'error':
        if (env.correlation_id === this.pending) this.onRefused(BondxError.fromEnvelope(env as ErrorEnvelope));
        break;
      default:
        break;
    }
  }

  /** A heartbeat's head seq of this topic. */
  heartbeat(head: number): void {
    if (this.ended || this.filtered || this.pending !== null || this.heldSeq === null) return;
    if (head <= this.heldSeq) {
      this.suspectHead = undefined;
      return;
    }
    // A head one heartbeat old that we still have not reached was not just in flight (batches flush in ms).
    if (this.suspectHead !== undefined && this.heldSeq < this.suspectHead) this.resubscribe(false);
    else this.suspectHead = head;
  }

  private onSnapshot(env: SnapshotEnvelope): void {
    if (this.pending !== null && env.correlation_id !== this.pending) {
      if (env.meta.epoch !== this.heldEpoch) this.foreignEpoch = true;
      return;
    }
    this.awaitingSnapshot = false;
    this.foreignEpoch = false;
    // A topic without entries has an empty snapshot at seq 0: its state is the one the reducers start from.
    const empty = env.seq === 0 && Object.keys(env.payload).length === 0;
    this.current = (empty ? (initialState(this.topic) ?? env.payload) : env.payload) as StateFor<K>;
    this.heldSeq = env.seq;
    this.heldEpoch = env.meta.epoch;
    this.emit(this.snapshots++ === 0 ? 'snapshot' : 'resync', env);
    this.verifyBook();
  }

  private onEntry(env: DeltaEnvelope | AlertEnvelope): void {
    const held = this.heldSeq;
    if (held === null || this.current === undefined || (this.pending !== null && this.awaitingSnapshot)) return;
    if (env.seq <= held) return; // a duplicate: resent by a resume, or by a path subscription
    if (env.seq > held + 1 && (!this.filtered || this.pending !== null)) {
      // Only the contiguous next seq while a subscribe is answered; otherwise a gap: resume from what we hold.
      if (this.pending === null) this.resubscribe(false);
      return;
    }
    if (this.pending !== null && this.foreignEpoch) return;
    const payload = env.payload as DeltaPayload;
    if (isDeltaKind(payload.kind)) this.current = applyDelta(this.current as StateOf<DeltaPayload>, payload) as StateFor<K>;
    this.heldSeq = env.seq;
    this.emit('delta', env as DeltaEvent<K>);
    if (payload.kind === 'l2') this.verifyBook();
  }

  /** The order book must hash to the checksum the server sent with it; a drifted book is replaced by a fresh snapshot. */
  private verifyBook(): void {
    const book = (this.current as { l2?: Book } | undefined)?.l2;
    if (this.kind === 'prices' && book && !bookMatches(book)) this.resubscribe(true);
  }

  private resubscribe(fresh: boolean): void {
    if (!this.link.send(this.subscribeMessage(fresh))) this.pending = null;
  }

  private onRefused(error: BondxError): void {
    if (FINAL.has(error.code)) {
      this.fail(error);
      return;
    }
    this.pending = null;
    this.emit('error', error);
    this.link.retryLater(this);
  }

  /** Ends the subscription with `error`: the server refused it for good. */
  fail(error: BondxError): void {
    if (this.ended) return;
    this.pending = null;
    this.ended = true;
    this.emit('error', error);
    this.link.remove(this);
  }
}
