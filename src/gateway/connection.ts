import { randomUUID } from 'node:crypto';
import type { Stream } from '../domain/topics.js';
import { describeLimit, newBucket, take, type Bucket, type BucketLimit } from '../flow/token-bucket.js';
import type { Logger } from '../observability/logger.js';
import type { ClientLabels, Metrics, TransportName } from '../observability/metrics.js';
import { ClientError, closeCodeOf, type ErrorCode } from '../protocol/errors.js';
import type { ClientMessage, Envelope, ReplayMessage, SubscribeMessage } from '../protocol/messages.js';
import { parseClientFrame, parseClientMessage, peekMessage } from '../protocol/parse.js';
import type { DeliveryTarget } from '../store/deliveries.js';
import { authorise, type Principal } from './auth.js';
import { endOfClose, type DeliveryTrack } from './delivery-ranges.js';
import type { DeliveryRecorder } from './delivery-recorder.js';
import { controlEnvelope, errorEnvelope } from './envelope.js';
import { NO_BATCHING, type Batching, type Hub } from './hub.js';
import { Frame, type Fanout, type Link } from './link.js';
import { LiveReplay } from './live-replay.js';
import { deliveryFilter } from './subtopics.js';
import { Subscription, type Subscriber } from './subscription.js';

/** One client message as a transport received it: a Socket.IO event (its name and argument) or a WebSocket frame. */
export type Inbound = { kind: string; data: unknown } | { frame: string | Uint8Array };

/** A queue this many times over the limit is cut even for market data only: memory must stay bounded. */
const HARD_QUEUE_FACTOR = 4;

/** What every connection of a gateway shares: one object, so an idle connection costs a few fields, not closures. */
export interface ConnectionContext {
  readonly hub: Hub;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Largest client message (UTF-8 bytes of its JSON), WS_MAX_MESSAGE_BYTES. */
  readonly maxMessageBytes: number;
  readonly heartbeatIntervalS: number;
  readonly maxQueueSize: number;
  /** Client messages allowed per connection of each stream (token bucket). */
  readonly rateLimits: Readonly<Record<Stream, BucketLimit>>;
  /** The delivery record (absent: off). */
  readonly deliveries: DeliveryRecorder | undefined;
  /** Verifies a refreshed token for this connection and moves its expiry; throws AUTH_INVALID. */
  renew(connection: Connection, token: string): Principal;
  /** The connection is over: out of the registry and its expiry schedule, counted with `reason`. */
  ended(connection: Connection, reason: string): void;
}

/**
 * One client connection, whatever the transport: the whole request pipeline (peek, count, bound and
 * parse, rate limit, dispatch, error reply, send), its subscriptions, background mode, flow control,
 * heartbeats and closing. Transports hand it what they receive (`receive`) and give it a Link to write
 * to; the two transports therefore answer every message identically.
 */
export class Connection implements Subscriber {
  /** Created on the first subscribe: an idle connection should cost as little as possible. */
  private subs: Map<string, Subscription> | undefined;
  private closed = false;
  /** Mobile background mode: alerts and the user's own topics stay live, market data is suspended. */
  private background = false;
  private readonly bucket: Bucket;
  /** Replaced by a `refresh` (same user, later expiry). */
  private current: Principal;
  /** The running `replay`, at most one: a second one, `replay_stop` or the end of the connection cancels it. */
  private replaying: LiveReplay | undefined;
  /** Second at which it is closed with TOKEN_EXPIRED (exp + grace); kept by the gateway. */
  expiresAt = 0;

  constructor(
    private readonly context: ConnectionContext,
    principal: Principal,
    readonly stream: Stream,
    readonly transport: TransportName,
    readonly link: Link,
    private readonly fanout: Fanout,
    /** Client labels (device type, version) the connection was counted under. */
    readonly labels: ClientLabels,
    /** Frees the connection's admission slot. */
    private readonly release: () => void,
  ) {
    this.current = principal;
    this.bucket = newBucket(context.rateLimits[stream], Date.now());
  }

  get principal(): Principal {
    return this.current;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Handles one client message and sends its reply (ack, pong or error), which it also resolves with
   * (Socket.IO passes it to the ack callback); undefined when the connection closed meanwhile. Never throws.
   */
  async receive(inbound: Inbound): Promise<Envelope | undefined> {
    // Counted by kind and answered with the client's correlation id even when it fails to parse.
    const peek = 'frame' in inbound ? (typeof inbound.frame === 'string' ? peekMessage(inbound.frame) : {}) : { ...peekMessage(inbound.data), type: inbound.kind };
    this.context.metrics.messageReceived(this.stream, peek.type ?? 'invalid');
    return this.answer(() => this.dispatch(this.parse(inbound)), peek.correlationId);
  }

  /** The path's topics of a plain-WebSocket connection, subscribed at connect (not client messages: no rate limit). */
  subscribeAll(requests: SubscribeMessage[]): void {
    for (const request of requests) void this.answer(() => this.subscribe(request), undefined);
  }

  /** Sends one envelope straight to this client (replies, snapshots, catch-up, heartbeats). */
  send(envelope: Envelope): void {
    this.context.metrics.messageSent(this.stream, envelope.type);
    this.link.write(new Frame(envelope));
  }

  /** Sends the error frame for `code`, ends the connection, then closes the transport with the code's close code. */
  close(code: ErrorCode, details: Record<string, unknown> = {}): void {
    if (this.closed) return;
    this.send(errorEnvelope(code, details));
    this.end(code.toLowerCase());
    this.link.close(closeCodeOf(code), code);
  }

  /** The connection is over (the transport saw it close, or the server closed it): every subscription ends. Idempotent. */
  end(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.replaying?.stop();
    const end = endOfClose(reason);
    for (const sub of this.subscriptions.values()) sub.stop(end);
    this.subs = undefined;
    this.release();
    this.context.ended(this, reason);
  }

  heartbeat(): void {
    const heads: Record<string, number> = {};
    for (const topic of this.subscriptions.keys()) {
      const head = this.context.hub.head(topic);
      if (head !== undefined) heads[topic] = head;
    }
    this.send(controlEnvelope('heartbeat', { heads }, { meta: { interval_s: this.context.heartbeatIntervalS } }));
  }

  /**
   * Backpressure on what is not yet written to the socket:
   * - over WS_MAX_QUEUE_SIZE, market data is paused (to be conflated); if the client also follows
   *   never-drop topics and is still over, or is far over, it is closed with SLOW_CONSUMER and will
   *   resume exactly where it was;
   * - once the queue is back under a quarter of the limit, paused market data resumes with one
   *   conflated snapshot marking the skipped range.
   * A slow client only ever costs its own queue: broadcasts to others never wait on it.
   */
  checkFlow(): void {
    const max = this.context.maxQueueSize;
    const queued = this.link.buffered();
    const { log, metrics } = this.context;
    if (queued > max) {
      const paused = this.pauseConflatable();
      if (queued > max * HARD_QUEUE_FACTOR || (paused === 0 && this.hasNeverDrop())) {
        log.warn({ user: this.principal.sub, stream: this.stream, queued, max }, 'slow consumer disconnected');
        metrics.messagesDropped(this.stream, 'slow_consumer_disconnect', 1);
        // Done with it now: a client that stopped reading may take long to finish the close, and must
        // neither be cut (and counted) again on every later check nor be sent anything meanwhile.
        this.close('SLOW_CONSUMER', { queued, limit: max });
      }
    } else if (queued <= max / 4 && !this.background && this.hasPaused()) {
      this.resumePaused().then(
        (skipped) => metrics.messagesDropped(this.stream, 'conflated', skipped),
        (err: unknown) => log.warn({ err }, 'resuming paused subscriptions failed'),
      );
    }
  }

  /**
   * Enters or leaves background mode. Leaving it brings suspended market data up to date at once with a
   * fresh (conflated) snapshot; never-dropped topics were live all along.
   */
  async setBackground(enabled: boolean): Promise<void> {
    this.background = enabled;
    if (enabled) this.pauseConflatable();
    else await this.resumePaused();
  }

  /** A subscription's topic had its history reset: subscribe it again from a fresh snapshot. */
  resubscribe(topic: string): void {
    const sub = this.subscriptions.get(topic);
    if (!sub || this.closed) return;
    const { resume_from_seq: _drop, epoch: _epoch, ...fresh } = sub.request;
    this.subscribe({ ...fresh, type: 'subscribe' }, true).catch((err: unknown) => this.context.log.warn({ err, topic, conn: this.link.id, user: this.principal.sub }, 'resync failed'));
  }

  private get subscriptions(): ReadonlyMap<string, Subscription> {
    return this.subs ?? NO_SUBSCRIPTIONS;
  }

  private parse(inbound: Inbound): ClientMessage {
    const max = this.context.maxMessageBytes;
    return 'frame' in inbound ? parseClientFrame(inbound.frame, max) : parseClientMessage(inbound.kind, inbound.data, max);
  }

  /** Runs one request and sends its reply or its error envelope. */
  private async answer(work: () => Promise<Envelope>, correlationId: string | undefined): Promise<Envelope | undefined> {
    let reply: Envelope;
    try {
      reply = await work();
    } catch (err) {
      reply = this.errorReply(err, correlationId ?? randomUUID());
    }
    if (this.closed) return undefined;
    this.send(reply);
    return reply;
  }

  /** Turns anything thrown while handling a client message into the documented error envelope. */
  private errorReply(err: unknown, correlationId: string): Envelope {
    const { log, metrics } = this.context;
    const error = ClientError.from(err);
    metrics.clientError(this.stream, error.code);
    if (error === err) log.debug({ code: error.code, details: error.details, correlation_id: correlationId, user: this.principal.sub }, 'client error');
    else log.error({ err, correlation_id: correlationId, user: this.principal.sub }, 'internal error handling client message');
    return errorEnvelope(error.code, error.details, correlationId, error.message);
  }

  private async dispatch(message: ClientMessage): Promise<Envelope> {
    const correlationId = message.correlation_id ?? null;
    const limit = this.context.rateLimits[this.stream];
    if (!take(this.bucket, limit, Date.now())) {
      throw new ClientError('RATE_LIMIT_EXCEEDED', { topic: 'topic' in message ? message.topic : `/${this.stream}`, limit: describeLimit(limit) });
    }
    switch (message.type) {
      case 'subscribe':
        if (message.compression !== undefined) this.link.compress?.(message.compression);
        return this.subscribe(message);
      case 'unsubscribe':
        authorise(this.stream, this.principal, message.topic);
        this.unsubscribe(message.topic);
        return controlEnvelope('ack', { action: 'unsubscribe', topic: message.topic }, { topic: message.topic, correlationId });
      case 'ping':
        return controlEnvelope('pong', {}, { correlationId });
      case 'background_mode':
        await this.setBackground(message.enabled);
        return controlEnvelope('ack', { action: 'background_mode', enabled: message.enabled }, { correlationId });
      case 'refresh':
        this.current = this.context.renew(this, message.token);
        return controlEnvelope('ack', { action: 'refresh', expires_at: new Date(this.current.exp * 1000).toISOString() }, { correlationId });
      case 'replay':
        return this.replay(message);
      case 'replay_stop':
        return controlEnvelope('ack', { action: 'replay_stop', stopped: this.replaying?.stop() ?? false }, { correlationId });
    }
  }

  /** Streams history alongside the live subscriptions (live-replay.ts); answered when it ends or is cancelled. */
  private async replay(request: ReplayMessage): Promise<Envelope> {
    authorise(this.stream, this.principal, request.topic);
    this.replaying?.stop();
    const { hub, maxQueueSize } = this.context;
    // Held under the level at which paused market data resumes, so a replay never pauses or cuts its client.
    const run = new LiveReplay(hub.store, request, this, maxQueueSize / 4, this.deliveryTrack(request.topic));
    this.replaying = run;
    try {
      const ack = await run.run();
      return controlEnvelope('ack', ack, { topic: request.topic, correlationId: request.correlation_id ?? null });
    } finally {
      if (this.replaying === run) this.replaying = undefined;
    }
  }

  /** `forceResync`: the server is re-subscribing the client because the topic's history was reset. */
  private async subscribe(request: SubscribeMessage, forceResync = false): Promise<Envelope> {
    const parsed = authorise(this.stream, this.principal, request.topic);
    const filter = deliveryFilter(parsed.kind, request.subtopics, request.integrity === true);
    const { topic } = request;
    const correlationId = request.correlation_id ?? null;
    const { hub } = this.context;
    this.unsubscribe(topic);
    // Held until this subscribe ends, even if an unsubscribe supersedes it meanwhile: the hub must not
    // drop the feed (and its rooms) while this call still awaits or uses them.
    const release = hub.hold(topic);
    const sub = new Subscription(this, hub, request, parsed.kind === 'prices', this.deliveryTrack(topic));
    (this.subs ??= new Map()).set(topic, sub);
    const superseded = () => controlEnvelope('ack', { action: 'subscribe', topic, superseded: true }, { topic, correlationId });
    try {
      const feed = await hub.feed(topic);
      if (this.subscriptions.get(topic) !== sub) return superseded();
      const batching: Batching = request.batch_size !== undefined && request.batch_size > 1 ? { size: request.batch_size } : NO_BATCHING;
      const result = await sub.start(feed, hub.room(this.fanout, topic, filter, batching), forceResync);
      if (result === 'superseded') return superseded();
      // In background mode market data is suspended right after its snapshot.
      if (this.background && sub.conflatable) sub.pause();
      return controlEnvelope('ack', { action: 'subscribe', topic, ...result }, { topic, seq: feed.head, correlationId });
    } catch (err) {
      if (this.subscriptions.get(topic) === sub) this.unsubscribe(topic);
      throw err;
    } finally {
      release();
    }
  }

  private unsubscribe(topic: string): void {
    const sub = this.subscriptions.get(topic);
    if (!sub) return;
    this.subs?.delete(topic);
    sub.stop('unsubscribe');
  }

  /** A track of what this connection is sent of `topic` (undefined when the delivery record is off). */
  private deliveryTrack(topic: string): DeliveryTrack | undefined {
    const recorder = this.context.deliveries;
    if (!recorder) return undefined;
    const target: DeliveryTarget = { gateway: recorder.gateway, conn: this.link.id, user: this.principal.sub, transport: this.transport, stream: this.stream, device_type: this.labels.device_type };
    return recorder.track(target, topic);
  }

  /** Stops live delivery of conflatable (market data) subscriptions; returns how many were paused. */
  private pauseConflatable(): number {
    let paused = 0;
    for (const sub of this.subscriptions.values()) if (sub.conflatable && sub.pause()) paused++;
    return paused;
  }

  /** Whether the client follows anything that must never be dropped (orders, positions, risk, alerts). */
  private hasNeverDrop(): boolean {
    for (const sub of this.subscriptions.values()) if (!sub.conflatable) return true;
    return false;
  }

  private hasPaused(): boolean {
    for (const sub of this.subscriptions.values()) if (sub.paused) return true;
    return false;
  }

  /** Resumes paused subscriptions, one conflated snapshot each; resolves with the number of entries skipped. */
  private async resumePaused(): Promise<number> {
    let skipped = 0;
    for (const sub of [...this.subscriptions.values()]) skipped += await sub.resume();
    return skipped;
  }
}

const NO_SUBSCRIPTIONS: ReadonlyMap<string, Subscription> = new Map();
