import type { IncomingHttpHeaders } from 'node:http';
import type { RateLimits } from '../config/config.js';
import type { Stream } from '../domain/topics.js';
import type { Logger } from '../observability/logger.js';
import type { ClientLabels, Metrics, TransportName } from '../observability/metrics.js';
import type { Admission } from '../flow/admission.js';
import { ClientError } from '../protocol/errors.js';
import type { ErrorEnvelope } from '../protocol/messages.js';
import type { LiveFeed, TopicStore } from '../store/topic-store.js';
import { verifyRefresh, verifyToken, type JwtKeys, type Principal } from './auth.js';
import { controlEnvelope, errorEnvelope } from './envelope.js';
import { Hub } from './hub.js';
import { ExpiryWheel } from './expiry-wheel.js';
import { Session, type ClientLink } from './session.js';

export type { TransportName };

/** How often outbound queues are checked for backpressure. */
const FLOW_CHECK_MS = 50;
/** A queue this many times over the limit is cut even for market data only: memory must stay bounded. */
const HARD_QUEUE_FACTOR = 4;
/** How often token expiries are swept (they have one-second resolution). */
const EXPIRY_CHECK_MS = 250;

const nowSecond = (): number => Math.floor(Date.now() / 1000);

/** A connection that passed admission: who it is, and how to free its slot. */
export interface Admitted {
  principal: Principal;
  release: () => void;
}

export interface ConnectionInfo {
  transport: TransportName;
  headers: IncomingHttpHeaders;
}

interface OpenSession {
  session: Session;
  info: ConnectionInfo;
  openedAt: number;
  /** Client labels (device type, version) this connection was counted under. */
  client: ClientLabels;
  release: () => void;
  /** Second at which the connection is closed with TOKEN_EXPIRED: its token's exp plus the grace period. */
  expiresAt: number;
}

/**
 * The gateway's shared core: authentication, admission, the session registry and the hub of live
 * topics. Transports (Socket.IO, plain WebSocket) only translate frames to and from it.
 */
export class Gateway {
  readonly hub: Hub;
  private readonly sessions = new Map<Session, OpenSession>();
  private readonly heartbeatTimer: NodeJS.Timeout;
  private readonly flowTimer: NodeJS.Timeout;
  /** Every session's token expiry, swept by one interval (no timer per connection). */
  private readonly expiries = new ExpiryWheel<Session>(nowSecond());
  private readonly expiryTimer: NodeJS.Timeout;
  /** Shared by every session (a per-session closure would cost each idle connection memory). */
  private readonly countSent = (stream: Stream, type: string): void => this.metrics.messageSent(stream, type);
  private readonly renew = (session: Session, token: string): Principal => this.refreshToken(session, token);

  constructor(
    readonly store: TopicStore,
    live: LiveFeed,
    private readonly keys: JwtKeys,
    private readonly log: Logger,
    private readonly limits: { maxConnections: number; heartbeatIntervalS: number; rateLimits: RateLimits; maxQueueSize: number; batchFlushMs: number; tokenGraceS: number },
    private readonly metrics: Metrics,
    private readonly admission: Admission,
  ) {
    this.hub = new Hub(store, live, log, metrics);
    metrics.queueSizesFrom(() => this.queueSizes());
    this.heartbeatTimer = setInterval(() => this.heartbeat(), limits.heartbeatIntervalS * 1000);
    this.heartbeatTimer.unref();
    this.flowTimer = setInterval(() => this.checkFlow(), FLOW_CHECK_MS);
    this.flowTimer.unref();
    this.expiryTimer = setInterval(() => this.expireTokens(), EXPIRY_CHECK_MS);
    this.expiryTimer.unref();
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
      if (this.sessions.size >= this.limits.maxConnections) {
        throw new ClientError('TOO_MANY_CONNECTIONS', { scope: 'gateway', limit: this.limits.maxConnections, stream, transport });
      }
      return { principal, release: await this.admission.admitUser(principal.sub) };
    } catch (err) {
      this.refused(stream, transport, err instanceof ClientError ? err.code : 'INTERNAL_ERROR');
      throw err;
    }
  }

  refused(stream: Stream, transport: TransportName, code: string): void {
    this.log.info({ stream, transport, code }, 'connection refused');
    this.metrics.connectionRefused(stream, transport, code);
  }

  /** Every client message, valid or not (`kind` as the client named it), before it is handled. */
  messageReceived(stream: Stream, kind: string): void {
    this.metrics.messageReceived(stream, kind);
  }

  /** `release` frees the connection's admission slot when the session closes. */
  openSession(principal: Principal, stream: Stream, link: ClientLink, info: ConnectionInfo, release: () => void): Session {
    const metrics = this.metrics;
    const limit = this.limits.rateLimits[stream];
    const session = new Session(this.hub, principal, stream, link, this.log, { burst: limit.burst, perMinute: limit.per_minute }, this.countSent, this.limits.batchFlushMs, this.renew);
    const client = metrics.connectionOpened(stream, info.transport, info.headers);
    const expiresAt = principal.exp + this.limits.tokenGraceS;
    this.sessions.set(session, { session, info, openedAt: Date.now(), client, release, expiresAt });
    this.expiries.schedule(session, expiresAt);
    this.log.debug({ conn: link.id, user: principal.sub, stream, transport: info.transport }, 'connected');
    return session;
  }

  closeSession(session: Session, reason: string): void {
    const open = this.sessions.get(session);
    if (!open || !this.sessions.delete(session)) return;
    this.expiries.cancel(session, open.expiresAt);
    this.metrics.connectionClosed(session.stream, open.info.transport, reason, open.client);
    open.release();
    session.close();
    this.log.debug({ reason, user: session.principal.sub, stream: session.stream }, 'disconnected');
  }

  /** A `refresh` on an open connection: the new token must be valid and for the same user; it moves the expiry. */
  private refreshToken(session: Session, token: string): Principal {
    const principal = verifyRefresh(this.keys, session.principal, token);
    const open = this.sessions.get(session);
    if (open) {
      this.expiries.cancel(session, open.expiresAt);
      open.expiresAt = principal.exp + this.limits.tokenGraceS;
      this.expiries.schedule(session, open.expiresAt);
    }
    return principal;
  }

  /** Closes every connection whose token (plus grace) has expired without a refresh. */
  expireTokens(): void {
    for (const session of this.expiries.takeDue(nowSecond())) {
      this.log.info({ conn: session.client.id, user: session.principal.sub, stream: session.stream }, 'token expired: connection closed');
      session.client.close('TOKEN_EXPIRED', { expired_at: new Date(session.principal.exp * 1000).toISOString() });
      this.closeSession(session, 'token_expired');
    }
  }

  /** Turns anything thrown while handling a client message into the documented error envelope. */
  errorReply(session: Session | undefined, err: unknown, correlationId: string): ErrorEnvelope {
    this.metrics.clientError(session?.stream ?? 'unknown', err instanceof ClientError ? err.code : 'INTERNAL_ERROR');
    if (err instanceof ClientError) {
      this.log.debug({ code: err.code, details: err.details, correlation_id: correlationId, user: session?.principal.sub }, 'client error');
      return errorEnvelope(err.code, err.details, correlationId, err.message);
    }
    this.log.error({ err, correlation_id: correlationId, user: session?.principal.sub }, 'internal error handling client message');
    return errorEnvelope('INTERNAL_ERROR', {}, correlationId);
  }

  /**
   * Backpressure, per connection, on what is not yet written to its socket:
   * - over WS_MAX_QUEUE_SIZE, market data is paused (to be conflated); if the client also follows
   *   never-drop topics and is still over, or is far over, it is disconnected with SLOW_CONSUMER and
   *   will resume exactly where it was;
   * - once its queue is back under a quarter of the limit, paused market data resumes with one
   *   conflated snapshot marking the skipped range.
   * A slow client only ever costs its own queue: broadcasts to others never wait on it.
   */
  checkFlow(): void {
    const max = this.limits.maxQueueSize;
    for (const { session } of this.sessions.values()) {
      const queued = session.client.queued();
      if (queued > max) {
        const paused = session.pauseConflatable();
        if (queued > max * HARD_QUEUE_FACTOR || (paused === 0 && session.hasNeverDrop())) {
          this.log.warn({ user: session.principal.sub, stream: session.stream, queued, max }, 'slow consumer disconnected');
          this.metrics.messagesDropped(session.stream, 'slow_consumer_disconnect', 1);
          session.client.close('SLOW_CONSUMER', { queued, limit: max });
          // Done with it now: a client that stopped reading may take long to finish the close, and must
          // neither be cut (and counted) again on every later check nor be sent anything meanwhile.
          this.closeSession(session, 'slow_consumer');
        }
      } else if (queued <= max / 4 && !session.inBackground && session.hasPaused()) {
        session.resumePaused().then(
          (skipped) => this.metrics.messagesDropped(session.stream, 'conflated', skipped),
          (err: unknown) => this.log.warn({ err }, 'resuming paused subscriptions failed'),
        );
      }
    }
  }

  /** Sends every client a heartbeat with the head seq of each topic it follows. */
  heartbeat(): void {
    for (const { session } of this.sessions.values()) {
      session.send(controlEnvelope('heartbeat', { heads: session.heads() }, { meta: { interval_s: this.limits.heartbeatIntervalS } }));
    }
  }

  /** An operator's disconnect: closes every connection of `user` on this gateway, either transport; returns how many. */
  disconnectUser(user: string): number {
    const doomed = [...this.sessions.keys()].filter((session) => session.principal.sub === user);
    for (const session of doomed) {
      session.client.close('DISCONNECTED_BY_OPERATOR');
      this.closeSession(session, 'operator_disconnect');
    }
    return doomed.length;
  }

  /** Graceful shutdown: every client is told to reconnect elsewhere, then closed. */
  drain(): void {
    for (const { session } of this.sessions.values()) session.client.close('SERVER_SHUTTING_DOWN', { reconnect: true });
  }

  /** Connection counts by stream and transport. */
  connectionCounts(): { total: number; by_stream: Record<string, number>; by_transport: Record<string, number> } {
    const byStream: Record<string, number> = {};
    const byTransport: Record<string, number> = {};
    for (const { session, info } of this.sessions.values()) {
      byStream[session.stream] = (byStream[session.stream] ?? 0) + 1;
      byTransport[info.transport] = (byTransport[info.transport] ?? 0) + 1;
    }
    return { total: this.sessions.size, by_stream: byStream, by_transport: byTransport };
  }

  /** Largest outbound queue per stream, for the queue-size gauge (read on scrape). */
  queueSizes(): Map<string, number> {
    const sizes = new Map<string, number>();
    for (const { session } of this.sessions.values()) {
      const queued = session.client.queued();
      sizes.set(session.stream, Math.max(sizes.get(session.stream) ?? 0, queued));
    }
    return sizes;
  }

  close(): void {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.flowTimer);
    clearInterval(this.expiryTimer);
    for (const session of [...this.sessions.keys()]) this.closeSession(session, 'server shutdown');
    this.hub.close();
    void this.admission.close();
  }
}
