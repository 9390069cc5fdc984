import type { IncomingHttpHeaders } from 'node:http';
import type { Stream } from '../domain/topics.js';
import type { Logger } from '../observability/logger.js';
import { ClientError } from '../protocol/errors.js';
import type { ErrorEnvelope } from '../protocol/messages.js';
import type { LiveFeed, TopicStore } from '../store/topic-store.js';
import { verifyToken, type JwtKeys, type Principal } from './auth.js';
import { controlEnvelope, errorEnvelope } from './envelope.js';
import { Hub } from './hub.js';
import { Session, type ClientLink } from './session.js';

export type TransportName = 'socketio' | 'websocket';

export interface ConnectionInfo {
  transport: TransportName;
  headers: IncomingHttpHeaders;
}

interface OpenSession {
  session: Session;
  info: ConnectionInfo;
  openedAt: number;
}

/**
 * The gateway's shared core: authentication, admission, the session registry and the hub of live
 * topics. Transports (Socket.IO, plain WebSocket) only translate frames to and from it.
 */
export class Gateway {
  readonly hub: Hub;
  private readonly sessions = new Map<Session, OpenSession>();

  constructor(
    readonly store: TopicStore,
    live: LiveFeed,
    private readonly keys: JwtKeys,
    private readonly log: Logger,
    private readonly limits: { maxConnections: number; heartbeatIntervalS: number },
  ) {
    this.hub = new Hub(store, live, log);
    this.heartbeatTimer = setInterval(() => this.heartbeat(), limits.heartbeatIntervalS * 1000);
    this.heartbeatTimer.unref();
  }

  private readonly heartbeatTimer: NodeJS.Timeout;

  authenticate(token: string | undefined): Principal {
    return verifyToken(this.keys, token);
  }

  /** Admission control before a connection is accepted. */
  admit(stream: Stream, transport: TransportName): void {
    if (this.sessions.size >= this.limits.maxConnections) {
      throw new ClientError('TOO_MANY_CONNECTIONS', { limit: this.limits.maxConnections, stream, transport });
    }
  }

  refused(stream: Stream, transport: TransportName, code: string): void {
    this.log.info({ stream, transport, code }, 'connection refused');
  }

  openSession(principal: Principal, stream: Stream, link: ClientLink, info: ConnectionInfo): Session {
    const session = new Session(this.hub, principal, stream, link, this.log.child({ conn: link.id, user: principal.sub }));
    this.sessions.set(session, { session, info, openedAt: Date.now() });
    this.log.debug({ conn: link.id, user: principal.sub, stream, transport: info.transport }, 'connected');
    return session;
  }

  closeSession(session: Session, reason: string): void {
    if (!this.sessions.delete(session)) return;
    session.close();
    this.log.debug({ reason, user: session.principal.sub, stream: session.stream }, 'disconnected');
  }

  /** Turns anything thrown while handling a client message into the documented error envelope. */
  errorReply(session: Session | undefined, err: unknown, correlationId: string): ErrorEnvelope {
    if (err instanceof ClientError) {
      this.log.debug({ code: err.code, details: err.details, correlation_id: correlationId, user: session?.principal.sub }, 'client error');
      return errorEnvelope(err.code, err.details, correlationId, err.message);
    }
    this.log.error({ err, correlation_id: correlationId, user: session?.principal.sub }, 'internal error handling client message');
    return errorEnvelope('INTERNAL_ERROR', {}, correlationId);
  }

  /** Sends every client a heartbeat with the head seq of each topic it follows. */
  heartbeat(): void {
    for (const { session } of this.sessions.values()) {
      session.client.send(controlEnvelope('heartbeat', { heads: session.heads() }, { meta: { interval_s: this.limits.heartbeatIntervalS } }));
    }
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

  close(): void {
    clearInterval(this.heartbeatTimer);
    for (const session of [...this.sessions.keys()]) this.closeSession(session, 'server shutdown');
    this.hub.close();
  }
}
