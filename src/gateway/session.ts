import type { JsonObject } from '../domain/json.js';
import { parseTopic, SYSTEM_ALERTS_TOPIC, streamServes, type Stream } from '../domain/topics.js';
import type { Logger } from '../observability/logger.js';
import { ClientError, type ErrorCode } from '../protocol/errors.js';
import type { ClientMessage, Envelope, SubscribeMessage } from '../protocol/messages.js';
import type { HistoryEntry, Snapshot } from '../store/topic-store.js';
import { hasRole, type Principal } from './auth.js';
import { batchEnvelope, controlEnvelope, entryEnvelope, snapshotEnvelope } from './envelope.js';
import { NO_BATCHING, type Batching, type Broadcast, type Hub, type Room, type RoomMember } from './hub.js';
import { deliveryFilter } from './subtopics.js';
import { describeLimit, newBucket, take, type Bucket, type BucketLimit } from '../flow/token-bucket.js';
import type { TopicFeed } from './topic-feed.js';

/** What a transport provides for one client connection. */
export interface ClientLink {
  readonly id: string;
  /** Transport name, part of room names (`sio:/market`, `ws`). */
  readonly transport: string;
  readonly broadcast: Broadcast;
  send(envelope: Envelope): void;
  /** Envelopes handed to the socket but not yet written to the network (the outbound queue). */
  queued(): number;
  /** Sends an error envelope with this code, then closes the connection. */
  close(code: ErrorCode, details?: Record<string, unknown>): void;
  /** After this, room broadcasts reach the client (and before it, they do not). */
  joinRoom(room: Room): void;
  leaveRoom(room: Room): void;
}

interface Subscription {
  topic: string;
  room?: Room;
  feed?: TopicFeed;
  request: SubscribeMessage;
  /** Market data may be conflated (skipped, then replaced by a fresh state); everything else never drops. */
  conflatable: boolean;
  /** Set while delivery is paused (slow client or background mode): the client has every seq up to here. */
  pausedAfter?: number;
  /** While paused, keeps the hub from dropping the room (now without this member) and the feed under it. */
  pauseHold?: () => void;
  /** The feed's epoch when paused: a different one on resume means the history was reset meanwhile. */
  pausedEpoch?: string;
}

/** How a snapshot is marked: a plain subscribe, a re-sync after history loss, or a conflation. */
interface SnapshotMode {
  resync?: boolean;
  /** Delivery was paused after this seq: the snapshot replaces the skipped range. */
  conflatedAfter?: number;
}

const NO_SUBSCRIPTIONS: ReadonlyMap<string, Subscription> = new Map();

/** History entries read per round trip while catching up. */
const CATCH_UP_PAGE = 2000;
/** Snapshot attempts (and the pause between them) before a subscribe gives up with INTERNAL_ERROR. */
const SNAPSHOT_ATTEMPTS = 50;
const SNAPSHOT_RETRY_MS = 10;
/** How long a resume waits for this gateway's feed to reach a seq the client already saw elsewhere. */
const FEED_WAIT_MS = 2000;

/**
 * The transport-independent half of a connection: authorisation, subscribe / resume / unsubscribe,
 * ping and background mode. Socket.IO and plain WebSocket both drive one of these per client, so the
 * two behave identically.
 */
export class Session implements RoomMember {
  /** Created on the first subscribe: an idle connection should cost as little as possible. */
  private subs: Map<string, Subscription> | undefined;
  private closed = false;
  /** Mobile background mode: alerts and the user's own topics stay live, market data is suspended. */
  private background = false;
  /** This connection's token bucket for client messages. */
  private readonly bucket: Bucket;
  /** Replaced by a `refresh` (same user, later expiry). */
  private current: Principal;

  constructor(
    private readonly hub: Hub,
    principal: Principal,
    readonly stream: Stream,
    private readonly link: ClientLink,
    /** The gateway's logger: a child logger per connection would cost each idle connection ~1 KB. */
    private readonly log: Logger,
    /** Client messages allowed on this connection (token bucket per connection and stream). */
    private readonly rateLimit: BucketLimit,
    /** Counts what is sent directly to this client (shared by all sessions: no per-connection closure). */
    private readonly onSend: (stream: Stream, type: string) => void,
    /** Longest a batched entry waits for its batch to fill. */
    private readonly batchFlushMs: number,
    /** Verifies a refreshed token for this session and reschedules its expiry; throws AUTH_INVALID (shared by all sessions). */
    private readonly renew: (session: Session, token: string) => Principal,
  ) {
    this.current = principal;
    this.bucket = newBucket(rateLimit, Date.now());
  }

  get principal(): Principal {
    return this.current;
  }

  /** Handles one parsed client message; resolves with the acknowledgement, throws ClientError on refusal. */
  async dispatch(message: ClientMessage): Promise<Envelope> {
    const correlationId = message.correlation_id ?? null;
    if (!take(this.bucket, this.rateLimit, Date.now())) {
      throw new ClientError('RATE_LIMIT_EXCEEDED', { topic: 'topic' in message ? message.topic : `/${this.stream}`, limit: describeLimit(this.rateLimit) });
    }
    switch (message.type) {
      case 'subscribe':
        return this.subscribe(message);
      case 'unsubscribe':
        this.authorise(message.topic);
        this.unsubscribe(message.topic);
        return controlEnvelope('ack', { action: 'unsubscribe', topic: message.topic }, { topic: message.topic, correlationId });
      case 'ping':
        return controlEnvelope('pong', {}, { correlationId });
      case 'background_mode':
        await this.setBackground(message.enabled);
        return controlEnvelope('ack', { action: 'background_mode', enabled: message.enabled }, { correlationId });
      case 'refresh':
        this.current = this.renew(this, message.token);
        return controlEnvelope('ack', { action: 'refresh', expires_at: new Date(this.current.exp * 1000).toISOString() }, { correlationId });
    }
  }

  private get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.subs ?? NO_SUBSCRIPTIONS;
  }

  /** Head seq of every live subscription, for heartbeats: a client on a quiet topic can still spot a gap. */
  heads(): Record<string, number> {
    const heads: Record<string, number> = {};
    for (const topic of this.subscriptions.keys()) {
      const head = this.hub.head(topic);
      if (head !== undefined) heads[topic] = head;
    }
    return heads;
  }

  /**
   * Enters or leaves background mode. Leaving it brings suspended market data up to date at once with a
   * fresh (conflated) snapshot; never-dropped topics were live all along.
   */
  async setBackground(enabled: boolean): Promise<number> {
    this.background = enabled;
    if (enabled) {
      this.pauseConflatable();
      return 0;
    }
    return this.resumePaused();
  }

  get inBackground(): boolean {
    return this.background;
  }

  /** Stops live delivery of conflatable (market data) subscriptions; returns how many were paused. */
  pauseConflatable(): number {
    let paused = 0;
    for (const sub of this.subscriptions.values()) if (sub.conflatable && this.pauseSubscription(sub)) paused++;
    return paused;
  }

  /** Whether the client follows anything that must never be dropped (orders, positions, risk, alerts). */
  hasNeverDrop(): boolean {
    for (const sub of this.subscriptions.values()) if (!sub.conflatable) return true;
    return false;
  }

  hasPaused(): boolean {
    for (const sub of this.subscriptions.values()) if (sub.pausedAfter !== undefined) return true;
    return false;
  }

  /**
   * Resumes paused subscriptions with one conflated snapshot each (`meta.conflated` names the skipped
   * seq range), then live deltas. Resolves with the number of entries skipped.
   */
  async resumePaused(): Promise<number> {
    let skipped = 0;
    for (const sub of [...this.subscriptions.values()]) {
      const after = sub.pausedAfter;
      if (after === undefined || !sub.room || !sub.feed) continue;
      sub.pausedAfter = undefined;
      const hold = sub.pauseHold;
      sub.pauseHold = undefined;
      // History reset while paused: the skipped range means nothing in the new epoch, so re-sync.
      const mode: SnapshotMode = sub.pausedEpoch === sub.feed.epoch ? { conflatedAfter: after } : { resync: true };
      try {
        const result = await this.catchUp(sub, sub.feed, sub.room, mode);
        if (result !== 'superseded' && typeof result.snapshot_seq === 'number') skipped += Math.max(0, result.snapshot_seq - after);
        hold?.();
      } catch (err) {
        // Stay paused (keeping the hold), so the next flow check tries again rather than going silent.
        sub.pausedAfter = after;
        sub.pauseHold = hold;
        throw err;
      }
    }
    return skipped;
  }

  private pauseSubscription(sub: Subscription): boolean {
    if (sub.pausedAfter !== undefined || !sub.room || !sub.feed || !sub.room.members.has(this)) return false;
    // Everything buffered for the room is sent first, so the client holds every seq up to the head.
    sub.room.flush();
    sub.room.members.delete(this);
    this.link.leaveRoom(sub.room);
    sub.pausedAfter = sub.feed.head;
    sub.pausedEpoch = sub.feed.epoch;
    sub.pauseHold = this.hub.hold(sub.topic);
    return true;
  }

  /** Sends one envelope straight to this client (replies, snapshots, catch-up, heartbeats). */
  send(envelope: Envelope): void {
    this.onSend(this.stream, envelope.type);
    this.link.send(envelope);
  }

  /** The transport's handle for this client (close, send). */
  get client(): ClientLink {
    return this.link;
  }

  /** Checks the topic's syntax, that this stream serves it, and that the caller may read it. */
  authorise(topic: string): ReturnType<typeof parseTopic> & object {
    const parsed = parseTopic(topic);
    if (!parsed) throw new ClientError('INVALID_TOPIC', { topic, reason: 'unknown topic pattern, or an id that can not exist (ISINs need their ISO 6166 check digit)' });
    if (!streamServes(this.stream, parsed.kind)) throw new ClientError('INVALID_TOPIC', { topic, reason: `not served on /${this.stream}` });
    if (parsed.owner !== undefined && parsed.owner !== this.principal.sub) throw new ClientError('FORBIDDEN', { topic, reason: "another user's topic" });
    if (topic === SYSTEM_ALERTS_TOPIC && !hasRole(this.principal, 'operator')) throw new ClientError('FORBIDDEN', { topic, reason: 'operator role required' });
    return parsed;
  }

  /** `forceResync`: the server is re-subscribing the client because the topic's history was reset. */
  async subscribe(request: SubscribeMessage, forceResync = false): Promise<Envelope> {
    const parsed = this.authorise(request.topic);
    const filter = deliveryFilter(parsed.kind, request.subtopics);
    const topic = request.topic;
    this.unsubscribe(topic);
    // Held until this subscribe ends, even if an unsubscribe supersedes it meanwhile: the hub must not
    // drop the feed (and its rooms) while this call still awaits or uses them.
    const release = this.hub.hold(topic);
    const sub: Subscription = { topic, request, conflatable: parsed.kind === 'prices' };
    (this.subs ??= new Map()).set(topic, sub);
    const superseded = () => controlEnvelope('ack', { action: 'subscribe', topic, superseded: true }, { topic, correlationId: request.correlation_id ?? null });
    try {
      const feed = await this.hub.feed(topic);
      if (!this.isCurrent(sub)) return superseded();
      sub.feed = feed;
      const batching: Batching = (request.batch_size ?? 1) > 1 ? { size: request.batch_size as number, flushMs: this.batchFlushMs } : NO_BATCHING;
      const room = this.hub.room(this.link.transport, topic, filter, batching, this.link.broadcast);
      const result = await this.catchUp(sub, feed, room, { resync: forceResync });
      if (result === 'superseded') return superseded();
      // In background mode market data is suspended right after its snapshot.
      if (this.background && sub.conflatable) this.pauseSubscription(sub);
      return controlEnvelope('ack', { action: 'subscribe', topic, ...result }, { topic, seq: feed.head, correlationId: request.correlation_id ?? null });
    } catch (err) {
      if (this.subscriptions.get(topic) === sub) this.unsubscribe(topic);
      throw err;
    } finally {
      release();
    }
  }

  unsubscribe(topic: string): void {
    const sub = this.subscriptions.get(topic);
    if (!sub) return;
    this.subs?.delete(topic);
    if (sub.room) {
      sub.room.members.delete(this);
      this.link.leaveRoom(sub.room);
    }
    sub.pauseHold?.();
    sub.pauseHold = undefined;
    this.hub.release(topic);
  }

  /** Re-subscribe from a fresh snapshot (the topic's history was reset or lost under us). */
  resync(topic: string): void {
    const sub = this.subscriptions.get(topic);
    if (!sub || this.closed) return;
    const { resume_from_seq: _drop, epoch: _epoch, ...fresh } = sub.request;
    this.subscribe({ ...fresh, type: 'subscribe' }, true).catch((err) => this.log.warn({ err, topic, conn: this.link.id, user: this.principal.sub }, 'resync failed'));
  }

  close(): void {
    this.closed = true;
    for (const topic of [...this.subscriptions.keys()]) this.unsubscribe(topic);
  }

  /**
   * Sends what the client is missing, then joins the room, with no gap and no duplicate:
   * everything up to the feed's head is sent directly (from history, then from the feed's ring),
   * and the join happens in the same synchronous step as the last direct send, so the next entry
   * the feed hands out reaches the client through the room.
   */
  private async catchUp(sub: Subscription, feed: TopicFeed, room: Room, mode: SnapshotMode): Promise<JsonObject | 'superseded'> {
    const { request } = sub;
    const correlationId = request.correlation_id ?? null;
    let cursor = mode.conflatedAfter === undefined ? request.resume_from_seq : undefined;
    let resync = mode.resync === true;
    // An empty epoch comes from a snapshot taken before the topic's first entry: nothing to compare.
    if (cursor !== undefined && request.epoch && request.epoch !== feed.epoch) resync = true;
    if (cursor !== undefined && !resync && cursor > feed.head && !(await feed.waitFor(cursor, FEED_WAIT_MS))) resync = true;

    // Resume: page through history until the feed's ring covers the rest.
    while (cursor !== undefined && !resync) {
      if (!this.isCurrent(sub)) return 'superseded';
      const recent = feed.recentAfter(cursor);
      if (recent) {
        this.sendEntries(recent, room);
        this.join(sub, room);
        return { resumed_from: request.resume_from_seq ?? 0, resync: false, epoch: feed.epoch };
      }
      const read = await feed.historyAfter(cursor, CATCH_UP_PAGE);
      if (!this.isCurrent(sub)) return 'superseded';
      const first = read.entries[0];
      if (read.epoch !== feed.epoch || (first !== undefined && first.seq !== cursor + 1) || (first === undefined && read.headSeq > cursor)) {
        resync = true;
        break;
      }
      // Only what the feed has already handed out: later entries will come through the room.
      const upToHead = read.entries.filter((e: HistoryEntry) => e.seq <= feed.head);
      this.sendEntries(upToHead, room);
      if (upToHead.length === 0) {
        resync = true;
        break;
      }
      cursor = (upToHead[upToHead.length - 1] as HistoryEntry).seq;
    }

    // Snapshot (first subscribe, or re-sync). Retries are for a store and feed caught between two
    // moments (a reset the feed has not seen yet, a snapshot newer than the ring): they settle fast.
    for (let attempt = 0; ; attempt++) {
      if (attempt >= SNAPSHOT_ATTEMPTS) throw new Error(`${sub.topic}: snapshot and live feed did not line up after ${attempt} attempts`);
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, SNAPSHOT_RETRY_MS));
      const snapshot = (await feed.snapshot()) ?? emptySnapshot(sub.topic, feed.epoch);
      if (!this.isCurrent(sub)) return 'superseded';
      if (snapshot.epoch !== feed.epoch && snapshot.seq > 0) continue;
      if (snapshot.seq > feed.head && !(await feed.waitFor(snapshot.seq, FEED_WAIT_MS))) continue;
      if (!this.isCurrent(sub)) return 'superseded';
      const recent = feed.recentAfter(snapshot.seq);
      if (!recent) continue; // the feed moved past its ring while we read: take a newer snapshot
      const conflated = mode.conflatedAfter !== undefined && snapshot.seq > mode.conflatedAfter ? { from: mode.conflatedAfter + 1, to: snapshot.seq } : undefined;
      // A conflation that skipped nothing needs no snapshot: the client is already current.
      if (mode.conflatedAfter === undefined || conflated) {
        this.send(snapshotEnvelope({ ...snapshot, epoch: feed.epoch }, room.filter.view(snapshot.state), { ...(resync ? { resync: true } : {}), ...(conflated ? { conflated } : {}) }, correlationId));
      }
      this.sendEntries(recent, room);
      this.join(sub, room);
      return { snapshot_seq: snapshot.seq, resync, epoch: feed.epoch };
    }
  }

  /** Sends catch-up entries directly, batched the same way the room batches live ones. */
  private sendEntries(entries: HistoryEntry[], room: Room): void {
    const envelopes = entries.filter((e) => room.filter.accepts(e)).map((e) => entryEnvelope(e));
    const size = room.batching.size;
    if (size <= 1) for (const envelope of envelopes) this.send(envelope);
    else for (let i = 0; i < envelopes.length; i += size) this.send(batchEnvelope(room.topic, envelopes.slice(i, i + size)));
  }

  private join(sub: Subscription, room: Room): void {
    // Whatever the room still buffers is older than what we just sent: it goes to the others first.
    room.flush();
    sub.room = room;
    room.members.add(this);
    this.link.joinRoom(room);
  }

  /** False once the subscription was unsubscribed or replaced: its catch-up must stop. */
  private isCurrent(sub: Subscription): boolean {
    return this.subscriptions.get(sub.topic) === sub;
  }
}

function emptySnapshot(topic: string, epoch: string): Snapshot {
  return { topic, epoch, seq: 0, ts: new Date().toISOString(), state: {} };
}
