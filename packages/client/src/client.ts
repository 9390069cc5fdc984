import { withCheckDigit } from '../../../src/domain/isin.js';
import { defaultTopics, parseTopic, streamFor, type Stream } from '../../../src/domain/topics.js';
import type { ClientMessage, Envelope, ErrorEnvelope } from '../../../src/protocol/messages.js';
import type { BatchEnvelope, HeartbeatEnvelope, ReplayAck } from '../../../src/protocol/socketio-events.js';
import { Emitter } from './emitter.js';
import { BondxError } from './errors.js';
import { Replay, type ReplayedEnvelope, type ReplayOptions } from './replay.js';
import { FINAL, nextCorrelation, Subscription, type LinkedSubscription, type SubscribeOptions, type SubscriptionLink, type TopicKindOf } from './subscription.js';
import { claimsOf } from './token.js';
import { openChannel, type Channel, type TransportName } from './transport.js';

export interface BondxClientOptions {
  /** The gateway, e.g. `http://localhost:8000` (both transports are served there). */
  url: string;
  /** A JWT; enough for a connection that ends before the token's `exp`. */
  token?: string;
  /** Asked for a fresh token before the current one expires (sent with `refresh`), and after a refusal for a bad token. */
  getToken?: () => string | Promise<string>;
  /** `socketio` (default) or plain `websocket`. */
  transport?: TransportName;
  /** Reconnect delays: `initialMs` (default 100), doubled per failed attempt up to `maxMs` (default 5000), with jitter. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long before `exp` a token is refreshed (default 30 s; at most half the token's lifetime). */
  refreshLeadMs?: number;
}

/** `live`: every connection the subscriptions need is up; `reconnecting`: one was lost and is being re-established. */
export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface ClientEvents {
  state: ConnectionState;
  /** A connection ended with an error (the SDK reconnects unless it can not: a bad token without getToken), or a refresh was refused. */
  error: BondxError;
}

/**
 * The ids a plain-WebSocket connection's path names, for streams whose path id is free: a valid ISIN and an
 * auction id nothing is published under, so the path's own subscription (which takes default options) never
 * shares a topic with the application's; it is unsubscribed as soon as the connection opens.
 */
const PLACEHOLDER_ISIN = withCheckDigit('ZZ000000000');
const PLACEHOLDER_AUCTION = '_bondx_client';

/**
 * The client: one connection per stream the subscriptions need (a Socket.IO namespace or a WebSocket path),
 * each reconnected with backoff and a current token, every subscription resumed where it stood.
 */
export class BondxClient extends Emitter<ClientEvents> {
  readonly transport: TransportName;
  private readonly links = new Map<Stream, StreamLink>();
  private token: string | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private current: ConnectionState = 'connecting';

  constructor(private readonly options: BondxClientOptions) {
    super();
    if (!options.token && !options.getToken) throw new TypeError('BondxClient needs a token or getToken');
    this.transport = options.transport ?? 'socketio';
    this.token = options.token;
    if (this.token) this.scheduleRefresh(this.token);
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Follows `topic` from a snapshot, then every delta in order, across reconnects. */
  subscribe<T extends string>(topic: T, options: SubscribeOptions = {}): Subscription<TopicKindOf<T>> {
    const { link, parsed } = this.linkFor(topic);
    const sub = new Subscription(topic, parsed.kind as TopicKindOf<T>, options, link, (err) => this.listenerFailed(err));
    link.add(sub);
    this.changed();
    return sub;
  }

  /**
   * Plays `topic`'s history (seqs `fromSeq`..`toSeq` at the recorded pace × `speed`) beside the live
   * subscriptions, on the topic's stream connection: `for await (const env of client.replay(...))`.
   */
  replay(topic: string, options: ReplayOptions = {}): Replay {
    const { link } = this.linkFor(topic);
    const { fromSeq, toSeq, since, until, speed } = options;
    const iso = (t: string | Date) => (typeof t === 'string' ? t : t.toISOString());
    const message = {
      type: 'replay' as const,
      topic,
      correlation_id: nextCorrelation(),
      ...(fromSeq === undefined ? {} : { from_seq: fromSeq }),
      ...(toSeq === undefined ? {} : { to_seq: toSeq }),
      ...(since === undefined ? {} : { since: iso(since) }),
      ...(until === undefined ? {} : { until: iso(until) }),
      ...(speed === undefined ? {} : { speed }),
    };
    const replay = new Replay(topic, message, () => link.send({ type: 'replay_stop' }));
    link.addReplay(replay);
    return replay;
  }

  /** Closes every connection; subscriptions end. */
  async close(): Promise<void> {
    clearTimeout(this.refreshTimer);
    const links = [...this.links.values()];
    this.links.clear();
    this.setState('closed');
    await Promise.all(links.map((l) => l.close()));
  }

  /** The connection of `topic`'s stream, opened on first use. */
  private linkFor(topic: string): { link: StreamLink; parsed: NonNullable<ReturnType<typeof parseTopic>> } {
    if (this.current === 'closed') throw new BondxError('CONNECTION_ERROR', 'client is closed');
    const parsed = parseTopic(topic);
    if (!parsed) throw new BondxError('INVALID_TOPIC', `invalid topic ${topic}`, { topic });
    const stream = streamFor(parsed.kind);
    let link = this.links.get(stream);
    if (!link) this.links.set(stream, (link = new StreamLink(this, stream)));
    return { link, parsed };
  }

  // ---- for StreamLink ----

  get url(): string {
    return this.options.url.replace(/\/+$/, '');
  }

  get closed(): boolean {
    return this.current === 'closed';
  }

  get canRefresh(): boolean {
    return this.options.getToken !== undefined;
  }

  /** The token to connect with: the current one, or a fresh one from getToken when there is none. */
  async connectToken(): Promise<string> {
    this.token ??= await this.freshToken();
    return this.token;
  }

  /** A bad or expired token was refused: the next connect asks getToken. */
  tokenRefused(): void {
    this.token = undefined;
  }

  backoffMs(attempt: number): number {
    const { initialMs = 100, maxMs = 5000 } = this.options.backoff ?? {};
    return Math.min(maxMs, initialMs * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  report(error: BondxError): void {
    this.emit('error', error);
  }

  /** A connection can not go on (a bad token and no way to get another): the client closes. */
  fail(error: BondxError): void {
    this.emit('error', error);
    void this.close();
  }

  linkDone(link: StreamLink): void {
    if (this.links.get(link.stream) === link) this.links.delete(link.stream);
  }

  changed(): void {
    if (this.closed) return;
    const statuses = [...this.links.values()].map((l) => l.status);
    if (statuses.length === 0) return;
    this.setState(statuses.includes('reconnecting') ? 'reconnecting' : statuses.includes('connecting') ? 'connecting' : 'live');
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.emit('state', state);
  }

  private listenerFailed(err: unknown): void {
    queueMicrotask(() => {
      throw err;
    });
  }

  private async freshToken(): Promise<string> {
    const { getToken } = this.options;
    if (!getToken) throw new BondxError('AUTH_REQUIRED', 'the token was refused and there is no getToken');
    const token = await getToken();
    this.scheduleRefresh(token);
    return token;
  }

  /** Before the token's exp, a fresh one is fetched and sent on every open connection (the `refresh` message). */
  private scheduleRefresh(token: string): void {
    clearTimeout(this.refreshTimer);
    const { exp } = claimsOf(token);
    if (exp === undefined || !this.options.getToken) return;
    const left = exp * 1000 - Date.now();
    const lead = Math.min(this.options.refreshLeadMs ?? 30_000, left / 2);
    this.refreshTimer = setTimeout(() => {
      this.freshToken().then(
        (fresh) => {
          if (this.closed) return;
          this.token = fresh;
          for (const link of this.links.values()) link.refresh(fresh);
        },
        (err: unknown) => this.report(err instanceof BondxError ? err : new BondxError('AUTH_INVALID', `getToken failed: ${String(err)}`)),
      );
    }, Math.max(0, left - lead));
  }
}

type LinkStatus = 'connecting' | 'live' | 'reconnecting';

/** One stream's connection and the subscriptions it carries. */
class StreamLink implements SubscriptionLink {
  status: LinkStatus = 'connecting';
  private readonly subs = new Map<string, LinkedSubscription>();
  private channel: Channel | undefined;
  private open = false;
  private attempts = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Correlation ids of refresh messages in flight: their replies are the client's, not a topic's. */
  private readonly refreshes = new Set<string>();
  private refreshCounter = 0;
  /** Replays asked on this connection, by correlation id, oldest first (their entries come in that order). */
  private readonly replays = new Map<string, Replay>();

  constructor(
    private readonly client: BondxClient,
    readonly stream: Stream,
  ) {}

  add(sub: LinkedSubscription): void {
    if (this.subs.has(sub.topic)) throw new Error(`already subscribed to ${sub.topic}: use its Subscription`);
    this.subs.set(sub.topic, sub);
    if (this.open) this.channel?.send(sub.subscribeMessage());
    else if (!this.channel && this.timer === undefined) void this.connect();
  }

  addReplay(replay: Replay): void {
    this.replays.set(replay.message.correlation_id, replay);
    if (this.open) this.channel?.send(replay.message);
    else if (!this.channel && this.timer === undefined) void this.connect();
  }

  send(message: ClientMessage): boolean {
    if (!this.open || !this.channel) return false;
    this.channel.send(message);
    return true;
  }

  remove(sub: LinkedSubscription): void {
    if (this.subs.get(sub.topic) !== sub) return;
    this.subs.delete(sub.topic);
    this.closeIfIdle();
  }

  /** Nothing left to carry (no subscription, no replay): the connection goes. */
  private closeIfIdle(): void {
    if (this.subs.size > 0 || this.replays.size > 0) return;
    this.client.linkDone(this);
    void this.close();
  }

  retryLater(sub: LinkedSubscription): void {
    setTimeout(() => {
      if (this.subs.get(sub.topic) === sub && !sub.closed) this.send(sub.subscribeMessage());
    }, this.client.backoffMs(1));
  }

  refresh(token: string): void {
    const correlation_id = `bx-refresh-${++this.refreshCounter}`;
    if (this.send({ type: 'refresh', token, correlation_id })) this.refreshes.add(correlation_id);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.open = false;
    for (const replay of this.replays.values()) replay.fail(new BondxError('CONNECTION_ERROR', 'client closed'));
    this.replays.clear();
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close();
  }

  private async connect(): Promise<void> {
    this.timer = undefined;
    let token: string;
    try {
      token = await this.client.connectToken();
    } catch (err) {
      this.client.fail(err instanceof BondxError ? err : new BondxError('AUTH_REQUIRED', String(err)));
      return;
    }
    if (this.client.closed || (this.subs.size === 0 && this.replays.size === 0)) return;
    const pathId = this.pathId(token);
    const resume = [...this.subs.values()]
      .filter((s) => defaultTopics(this.stream, pathId).includes(s.topic))
      .map((s) => s.resumeToken())
      .filter((t): t is string => t !== undefined)
      .join(',');
    const channel = openChannel(this.client.transport, { url: this.client.url, stream: this.stream, token, pathId, resume }, {
      open: () => this.opened(channel, pathId),
      envelope: (env) => this.received(env),
      closed: (error) => this.lost(channel, error),
    });
    this.channel = channel;
  }

  /** The WebSocket path id: the user for per-user streams, a placeholder where any id would do. */
  private pathId(token: string): string {
    switch (this.stream) {
      case 'market':
        return PLACEHOLDER_ISIN;
      case 'auction':
        return PLACEHOLDER_AUCTION;
      default: {
        const owner = [...this.subs.values()].map((s) => parseTopic(s.topic)?.owner).find((o) => o !== undefined);
        return claimsOf(token).sub ?? owner ?? '';
      }
    }
  }

  private opened(channel: Channel, pathId: string): void {
    if (channel !== this.channel) return;
    this.open = true;
    this.attempts = 0;
    this.status = 'live';
    if (this.client.transport === 'websocket') {
      // The path subscribed its own topics; those the application does not follow are dropped at once.
      for (const topic of defaultTopics(this.stream, pathId)) if (!this.subs.has(topic)) channel.send({ type: 'unsubscribe', topic });
    }
    for (const sub of this.subs.values()) channel.send(sub.subscribeMessage());
    for (const replay of this.replays.values()) channel.send(replay.message);
    this.client.changed();
  }

  private received(env: Envelope): void {
    if (env.type === 'batch') {
      for (const entry of (env as BatchEnvelope).payload) this.route(entry as Envelope);
      return;
    }
    this.route(env);
  }

  private route(env: Envelope): void {
    if (env.type === 'heartbeat') {
      for (const [topic, head] of Object.entries((env as HeartbeatEnvelope).payload.heads)) this.subs.get(topic)?.heartbeat(head);
      return;
    }
    if (env.correlation_id !== null && this.refreshes.delete(env.correlation_id)) {
      if (env.type === 'error') this.client.report(BondxError.fromEnvelope(env as ErrorEnvelope));
      return;
    }
    if (env.correlation_id !== null && this.replayReply(env.correlation_id, env)) return;
    if (env.meta['replay'] === true) {
      // Not the subscription's: its state and seqs are the live ones. The oldest running replay of the topic.
      [...this.replays.values()].find((replay) => replay.topic === env.topic)?.push(env as ReplayedEnvelope);
      return;
    }
    if (env.topic !== null) this.subs.get(env.topic)?.receive(env);
  }

  /** The ack or error that ends a replay; false when `correlationId` is not a replay's. */
  private replayReply(correlationId: string, env: Envelope): boolean {
    const replay = this.replays.get(correlationId);
    if (!replay) return false;
    this.replays.delete(correlationId);
    if (env.type === 'error') replay.fail(BondxError.fromEnvelope(env as ErrorEnvelope));
    else replay.end(env.payload as ReplayAck);
    this.closeIfIdle();
    return true;
  }

  private lost(channel: Channel, error: BondxError | undefined): void {
    if (channel !== this.channel) return;
    this.channel = undefined;
    this.open = false;
    this.refreshes.clear();
    for (const sub of this.subs.values()) sub.detached();
    // A replay is not resumed: it ends with the connection it was playing on.
    for (const replay of this.replays.values()) replay.fail(error ?? new BondxError('CONNECTION_ERROR', 'connection closed'));
    this.replays.clear();
    if (this.client.closed) return;
    const failure = error ?? new BondxError('CONNECTION_ERROR', 'connection closed');
    this.client.report(failure);
    if (failure.isAuth) {
      if (!this.client.canRefresh) {
        this.client.fail(failure);
        return;
      }
      this.client.tokenRefused();
    }
    if (FINAL.has(failure.code)) {
      // The connection itself is refused for good (e.g. a path the token may not open): its subscriptions end.
      for (const sub of [...this.subs.values()]) sub.fail(failure);
      return;
    }
    this.status = 'reconnecting';
    this.client.changed();
    const delay = failure.code === 'SERVER_SHUTTING_DOWN' ? 0 : this.client.backoffMs(this.attempts++);
    this.timer = setTimeout(() => void this.connect(), delay);
  }
}
