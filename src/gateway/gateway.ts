import type { IncomingHttpHeaders } from 'node:http';
import type { RateLimits } from '../config/config.js';
import { defaultTopics, type Stream } from '../domain/topics.js';
import type { Admission } from '../flow/admission.js';
import type { BucketLimit } from '../flow/token-bucket.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics, TransportName } from '../observability/metrics.js';
import { ClientError } from '../protocol/errors.js';
import type { SubscribeMessage } from '../protocol/messages.js';
import type { LiveFeed, TopicStore } from '../store/topic-store.js';
import { authorise, verifyRefresh, verifyToken, type JwtKeys, type Principal } from './auth.js';
import { Connection, type ConnectionContext } from './connection.js';
import type { DeliveryRecorder } from './delivery-recorder.js';
import { ExpiryWheel } from './expiry-wheel.js';
import { Hub } from './hub.js';
import type { Fanout, Link } from './link.js';

export type { TransportName };

/** How often outbound queues are checked for backpressure. */
const FLOW_CHECK_MS = 50;
/** How often token expiries are swept (they have one-second resolution). */
const EXPIRY_CHECK_MS = 250;
/** Mobile clients starting in the background say so at connect (then `background_mode` messages). */
const BACKGROUND_HEADER = 'x-background-mode';

const nowSecond = (): number => Math.floor(Date.now() / 1000);

/** A connection that passed admission: who it is, and how to free its slot. */
export interface Admitted {
  principal: Principal;
  release: () => void;
}

/** What a transport knows about a connection it opens. */
export interface OpenRequest {
  stream: Stream;
  transport: TransportName;
  headers: IncomingHttpHeaders;
  /**
   * A plain-WebSocket path's id (raw, percent-encoded) and `?resume=topic@seq[@epoch],…`: connecting
   * subscribes to the path's topics, resuming those named.
   */
  path?: { id: string; resume: string | null };
}

export interface GatewayLimits {
  maxConnections: number;
  heartbeatIntervalS: number;
  rateLimits: RateLimits;
  maxQueueSize: number;
  tokenGraceS: number;
  /** WS_MAX_MESSAGE_BYTES: larger client messages get PAYLOAD_TOO_LARGE. */
  maxMessageBytes: number;
}

/**
 * The gateway's shared core: authentication, admission, the connection registry, the hub of live
 * topics, and the timers every connection shares (heartbeats, flow control, token expiry). Transports
 * only carry frames to and from its connections.
 */
export class Gateway {
  readonly hub: Hub;
  private readonly connections = new Set<Connection>();
  private readonly context: ConnectionContext;
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly flowTimer: NodeJS.Timeout;
  /** Every connection's token expiry, swept by one interval (no timer per connection). */
  private readonly expiries = new ExpiryWheel<Connection>(nowSecond());
  private readonly expiryTimer: NodeJS.Timeout;

  constructor(
    readonly store: TopicStore,
    live: LiveFeed,
    private readonly keys: JwtKeys,
    private readonly log: Logger,
    private readonly limits: GatewayLimits,
    private readonly metrics: Metrics,
    private readonly admission: Admission,
    /** The delivery record of this gateway's connections (absent: off); its owner flushes and closes it. */
    readonly deliveries?: DeliveryRecorder,
  ) {
    this.hub = new Hub(store, live, log, metrics);
    const bucket = (stream: Stream): BucketLimit => ({ burst: limits.rateLimits[stream].burst, perMinute: limits.rateLimits[stream].per_minute });
    this.context = {
      hub: this.hub,
      log,
      metrics,
      maxMessageBytes: limits.maxMessageBytes,
      heartbeatIntervalS: limits.heartbeatIntervalS,
      maxQueueSize: limits.maxQueueSize,
      rateLimits: { market: bucket('market'), auction: bucket('auction'), trading: bucket('trading'), risk: bucket('risk'), mobile: bucket('mobile') },
      deliveries,
      renew: (connection, token) => this.refreshToken(connection, token),
      ended: (connection, reason) => this.ended(connection, reason),
    };
    metrics.queueSizesFrom(() => this.queueSizes());
    this.heartbeatTimer = setInterval(() => this.each((c) => c.heartbeat()), limits.heartbeatIntervalS * 1000);
    this.heartbeatTimer.unref();
    this.flowTimer = setInterval(() => this.each((c) => c.checkFlow()), FLOW_CHECK_MS);
    this.flowTimer.unref();
    this.expiryTimer = setInterval(() => this.expireTokens(), EXPIRY_CHECK_MS);
    this.expiryTimer.unref();
  }

  /**
   * The largest frame a transport reads at all: beyond it the transport's library cuts the connection
   * (WebSocket close 1009); up to it, a message over WS_MAX_MESSAGE_BYTES gets PAYLOAD_TOO_LARGE.
   */
  get maxFrameBytes(): number {
    return Math.max(this.limits.maxMessageBytes * 4, 1 << 20);
  }

  authenticate(token: string | undefined): Principal {
    return verifyToken(this.keys, token);
  }

  /**
   * Everything a connection must pass before it is accepted: the IP's attempt rate, the token, this
   * gateway's connection limit, the user's attempt rate and open connections across all gateways.
   * Throws a ClientError (and counts the refusal); resolves with the principal and the slot's release.
   */
  async admit(stream: Stream, transport: TransportName, ip: string, token: string | undefined): Promise<Admitted> {
    try {
      await this.admission.attemptFromIp(ip);
      const principal = this.authenticate(token);
      if (this.connections.size >= this.limits.maxConnections) {
        throw new ClientError('TOO_MANY_CONNECTIONS', { scope: 'gateway', limit: this.limits.maxConnections, stream, transport });
      }
      return { principal, release: await this.admission.admitUser(principal.sub) };
    } catch (err) {
      this.refused(stream, transport, ClientError.from(err).code);
      throw err;
    }
  }

  /**
   * Opens an admitted connection over `link`. A WebSocket path is judged here, after authentication
   * (without a token every path answers 4401 alike): an id that can not exist is INVALID_TOPIC, another
   * user's FORBIDDEN; such a refusal frees the slot, is counted and thrown (a ClientError).
   */
  open(admitted: Admitted, link: Link, fanout: Fanout, request: OpenRequest): Connection {
    const { principal, release } = admitted;
    const { stream, transport, headers, path } = request;
    let subscribes: SubscribeMessage[] = [];
    try {
      if (path) subscribes = pathSubscribes(stream, principal, path.id, path.resume);
    } catch (err) {
      release();
      this.refused(stream, transport, ClientError.from(err).code);
      throw err;
    }
    const connection = new Connection(this.context, principal, stream, transport, link, fanout, this.metrics.connectionOpened(stream, transport, headers), release);
    this.connections.add(connection);
    this.schedule(connection, principal.exp);
    this.log.debug({ conn: link.id, user: principal.sub, stream, transport }, 'connected');
    if (headers[BACKGROUND_HEADER] === 'true') void connection.setBackground(true);
    connection.subscribeAll(subscribes);
    return connection;
  }

  /** An operator's disconnect: closes every connection of `user` on this gateway, either transport; returns how many. */
  disconnectUser(user: string): number {
    const doomed = [...this.connections].filter((c) => c.principal.sub === user);
    for (const connection of doomed) connection.close('DISCONNECTED_BY_OPERATOR');
    return doomed.length;
  }

  /** Graceful shutdown: every client is told to reconnect elsewhere, then closed. */
  drain(): void {
    this.each((c) => c.close('SERVER_SHUTTING_DOWN', { reconnect: true }));
  }

  /** Connection counts by stream and transport. */
  connectionCounts(): { total: number; by_stream: Record<string, number>; by_transport: Record<string, number> } {
    const byStream: Record<string, number> = {};
    const byTransport: Record<string, number> = {};
    for (const { stream, transport } of this.connections) {
      byStream[stream] = (byStream[stream] ?? 0) + 1;
      byTransport[transport] = (byTransport[transport] ?? 0) + 1;
    }
    return { total: this.connections.size, by_stream: byStream, by_transport: byTransport };
  }

  close(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.flowTimer);
    clearInterval(this.expiryTimer);
    this.each((c) => c.end('server shutdown'));
    this.hub.close();
    void this.admission.close();
  }

  private refused(stream: Stream, transport: TransportName, code: string): void {
    this.log.info({ stream, transport, code }, 'connection refused');
    this.metrics.connectionRefused(stream, transport, code);
  }

  private ended(connection: Connection, reason: string): void {
    if (!this.connections.delete(connection)) return;
    this.expiries.cancel(connection, connection.expiresAt);
    this.metrics.connectionClosed(connection.stream, connection.transport, reason, connection.labels);
    this.log.debug({ reason, user: connection.principal.sub, stream: connection.stream }, 'disconnected');
  }

  /** The connection is closed with TOKEN_EXPIRED at its token's exp plus the grace period. */
  private schedule(connection: Connection, exp: number): void {
    connection.expiresAt = exp + this.limits.tokenGraceS;
    this.expiries.schedule(connection, connection.expiresAt);
  }

  /** A `refresh` on an open connection: the new token must be valid and for the same user; it moves the expiry. */
  private refreshToken(connection: Connection, token: string): Principal {
    const principal = verifyRefresh(this.keys, connection.principal, token);
    if (this.connections.has(connection)) {
      this.expiries.cancel(connection, connection.expiresAt);
      this.schedule(connection, principal.exp);
    }
    return principal;
  }

  /** Closes every connection whose token (plus grace) has expired without a refresh. */
  private expireTokens(): void {
    for (const connection of this.expiries.takeDue(nowSecond())) {
      this.log.info({ conn: connection.link.id, user: connection.principal.sub, stream: connection.stream }, 'token expired: connection closed');
      connection.close('TOKEN_EXPIRED', { expired_at: new Date(connection.principal.exp * 1000).toISOString() });
    }
  }

  /** Largest outbound queue per stream, for the queue-size gauge (read on scrape). */
  queueSizes(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const { stream, link } of this.connections) sizes.set(stream, Math.max(sizes.get(stream) ?? 0, link.buffered()));
    return sizes;
  }

  /** Runs `fn` on every open connection (over a copy: it may close them). */
  private each(fn: (connection: Connection) => void): void {
    for (const connection of [...this.connections]) fn(connection);
  }
}

/** A WebSocket path's topics as subscribes, each authorised like a client's own subscribe. */
function pathSubscribes(stream: Stream, principal: Principal, rawId: string, resume: string | null): SubscribeMessage[] {
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    throw new ClientError('INVALID_TOPIC', { reason: 'malformed percent-encoding in the path id' });
  }
  const resumes = parseResume(resume);
  return defaultTopics(stream, id).map((topic) => {
    authorise(stream, principal, topic);
    return { type: 'subscribe', topic, ...resumes.get(topic) };
  });
}

function parseResume(value: string | null): Map<string, Pick<SubscribeMessage, 'resume_from_seq' | 'epoch'>> {
  const out = new Map<string, Pick<SubscribeMessage, 'resume_from_seq' | 'epoch'>>();
  for (const part of value?.split(',') ?? []) {
    const [topic, seq, epoch] = part.split('@');
    const n = Number(seq);
    if (topic && Number.isInteger(n) && n >= 0) out.set(topic, { resume_from_seq: n, ...(epoch ? { epoch } : {}) });
  }
  return out;
}
