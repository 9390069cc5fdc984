import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { defaultTopics, isStream, parseTopic, type Stream } from '../../domain/topics.js';
import type { Principal } from '../../gateway/auth.js';
import { tokenFromRequest } from '../../gateway/auth.js';
import { errorEnvelope } from '../../gateway/envelope.js';
import type { Admitted, Gateway } from '../../gateway/gateway.js';
import type { Room } from '../../gateway/hub.js';
import type { ClientLink, Session } from '../../gateway/session.js';
import type { Logger } from '../../observability/logger.js';
import { ClientError, closeCodeOf, httpStatusOf } from '../../protocol/errors.js';
import type { Envelope, SubscribeMessage } from '../../protocol/messages.js';
import { parseClientFrame, peekMessage } from '../../protocol/parse.js';
import { DEFLATE_OPTIONS } from '../deflate.js';

/** How long shutdown waits for clients to complete their close handshake. */
const CLOSE_GRACE_MS = 1000;

/** Where this API lives; every other upgrade belongs to `otherUpgradePaths` or is refused. */
const API_PREFIX = '/api/v1/ws/';
const PATH = new RegExp(`^${API_PREFIX}([a-z]+)/([^/]+)$`);

export interface WebSocketOptions {
  maxMessageBytes: number;
  heartbeatIntervalS: number;
  connectionTimeoutS: number;
  /**
   * Path prefixes whose upgrades another listener on the same HTTP server answers (engine.io's, e.g.
   * `/socket.io/`). An upgrade matching neither these nor the API is answered 404 and closed here:
   * no listener would answer it otherwise, and the client would wait forever.
   */
  otherUpgradePaths: readonly string[];
}

interface Connection {
  ws: WebSocket;
  lastSeen: number;
  /** permessage-deflate for this connection's frames (compression: true, or mobile by default). */
  compress: boolean;
  /** Frames handed to ws whose write has not completed yet: the outbound queue. */
  pending: number;
}

/**
 * The product's plain-WebSocket API at `/api/v1/ws/{stream}/{id}`, for clients that do not speak
 * Socket.IO. Text frames carry the standard envelope; the session core is the same as Socket.IO's.
 */
export function attachWebSocket(httpServer: HttpServer, gateway: Gateway, log: Logger, opts: WebSocketOptions): { close(): Promise<void> } {
  // Frames far beyond the limit are cut by ws itself (close 1009); up to it we answer PAYLOAD_TOO_LARGE.
  const wss = new WebSocketServer({ noServer: true, maxPayload: Math.max(opts.maxMessageBytes * 4, 1 << 20), perMessageDeflate: DEFLATE_OPTIONS });
  const rooms = new Map<string, Set<Connection>>();
  const connections = new Map<Connection, Session>();

  const broadcast = (roomName: string, envelope: Envelope) => {
    const members = rooms.get(roomName);
    if (!members || members.size === 0) return;
    const frame = JSON.stringify(envelope); // serialised once for the whole room
    for (const member of members) sendFrame(member, frame);
  };

  function sendFrame(conn: Connection, frame: string): void {
    conn.pending++;
    conn.ws.send(frame, { compress: conn.compress }, () => conn.pending--);
  }

  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // engine.io matches its path as a prefix of the raw URL, query string included.
    const url = req.url ?? '/';
    if (opts.otherUpgradePaths.some((prefix) => url.startsWith(prefix))) return;
    if (!url.startsWith(API_PREFIX)) return refuseUpgrade(socket, new URL(url, 'http://localhost').pathname);
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Frames a client sends right after the handshake wait until the session listens for them.
      ws.pause();
      accept(ws, req)
        .catch((err: unknown) => {
          log.error({ err }, 'websocket accept failed');
          refuse(ws, err);
        })
        .finally(() => ws.resume());
    });
  });

  function refuse(ws: WebSocket, err: unknown): void {
    const clientError = err instanceof ClientError ? err : new ClientError('INTERNAL_ERROR');
    ws.send(JSON.stringify(errorEnvelope(clientError.code, clientError.details)));
    ws.close(closeCodeOf(clientError.code), clientError.code);
  }

  async function accept(ws: WebSocket, req: IncomingMessage): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = PATH.exec(url.pathname);
    const name = match?.[1] ?? '';
    if (!isStream(name)) return refuse(ws, new ClientError('INVALID_TOPIC', { reason: `unknown stream path ${url.pathname}` }));
    const stream: Stream = name;
    let admitted: Admitted;
    try {
      admitted = await gateway.admit(stream, 'websocket', req.socket.remoteAddress ?? 'unknown', tokenFromRequest(req.headers, req.url));
    } catch (err) {
      return refuse(ws, err);
    }
    const { principal, release } = admitted;
    if (ws.readyState !== ws.OPEN) return release(); // the client left while we checked
    // The id is judged after authentication: without a token every path answers 4401 alike.
    const topics = pathTopics(stream, match?.[2] ?? '', principal);
    if (topics instanceof ClientError) {
      release();
      gateway.refused(stream, 'websocket', topics.code);
      return refuse(ws, topics);
    }

    const conn: Connection = { ws, lastSeen: Date.now(), compress: stream === 'mobile', pending: 0 };
    const link: ClientLink = {
      id: randomUUID(),
      transport: 'ws',
      broadcast,
      send: (envelope) => sendFrame(conn, JSON.stringify(envelope)),
      queued: () => conn.pending,
      close: (code, details) => refuse(ws, new ClientError(code, details ?? {})),
      joinRoom: (room: Room) => {
        let members = rooms.get(room.name);
        if (!members) rooms.set(room.name, (members = new Set()));
        members.add(conn);
      },
      leaveRoom: (room: Room) => {
        const members = rooms.get(room.name);
        members?.delete(conn);
        if (members?.size === 0) rooms.delete(room.name);
      },
    };
    const session = gateway.openSession(principal, stream, link, { transport: 'websocket', headers: req.headers }, release);
    if (req.headers['x-background-mode'] === 'true') void session.setBackground(true);
    connections.set(conn, session);

    ws.on('pong', () => (conn.lastSeen = Date.now()));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      conn.lastSeen = Date.now();
      void handleFrame(conn, session, isBinary ? undefined : rawText(data));
    });
    ws.on('close', () => {
      connections.delete(conn);
      gateway.closeSession(session, 'client closed');
    });
    ws.on('error', (err) => log.debug({ err: err.message, conn: link.id }, 'websocket error'));

    // Connecting subscribes to the path's topics; `?resume=topic@seq[@epoch],…` resumes them.
    const resume = parseResume(url.searchParams.get('resume'));
    for (const topic of topics) void respond(conn, session, () => session.subscribe({ type: 'subscribe', topic, ...resume.get(topic) }), null);
  }

  async function handleFrame(conn: Connection, session: Session, text: string | undefined): Promise<void> {
    // Bounded by maxPayload, so peeking into an oversized frame is affordable.
    const peek = text === undefined ? {} : peekMessage(text);
    gateway.messageReceived(session.stream, peek.type ?? 'invalid');
    const correlationId = peek.correlationId ?? null;
    await respond(
      conn,
      session,
      () => {
        if (text === undefined) throw new ClientError('INVALID_MESSAGE', { reason: 'binary frames are not supported; send JSON text' });
        const message = parseClientFrame(text, opts.maxMessageBytes);
        if (message.type === 'subscribe' && message.compression !== undefined) conn.compress = message.compression;
        return session.dispatch(message);
      },
      () => correlationId,
    );
  }

  /** Runs one request and sends its reply (ack/pong) or its error envelope; never throws. */
  async function respond(conn: Connection, session: Session, work: () => Promise<Envelope>, correlationId: (() => string | null) | null): Promise<void> {
    let reply: Envelope;
    try {
      reply = await work();
    } catch (err) {
      reply = gateway.errorReply(session, err, correlationId?.() ?? randomUUID());
    }
    if (conn.ws.readyState === conn.ws.OPEN) sendFrame(conn, JSON.stringify(reply));
  }

  // Liveness: ping every heartbeat interval; a client silent (not even a pong) past the timeout is closed.
  const liveness = setInterval(() => {
    const deadline = Date.now() - opts.connectionTimeoutS * 1000;
    for (const [conn, session] of connections) {
      if (conn.lastSeen < deadline) {
        log.info({ user: session.principal.sub }, 'closing silent websocket connection');
        refuse(conn.ws, new ClientError('CONNECTION_ERROR', { reason: `silent for more than ${opts.connectionTimeoutS}s` }));
        conn.ws.terminate();
      } else conn.ws.ping();
    }
  }, Math.min(opts.heartbeatIntervalS, opts.connectionTimeoutS) * 1000);
  liveness.unref();

  return {
    /** Waits briefly for close handshakes already under way (e.g. after a drain), then cuts the rest. */
    async close() {
      clearInterval(liveness);
      const closing = [...connections.keys()].map((conn) => new Promise((resolve) => conn.ws.once('close', resolve)));
      await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS))]);
      for (const conn of connections.keys()) conn.ws.terminate();
      wss.close();
    },
  };
}

/** The topics a path id stands for, or why the caller may not have them. */
function pathTopics(stream: Stream, rawId: string, principal: Principal): string[] | ClientError {
  let id: string;
  try {
    id = decodeURIComponent(rawId);
  } catch {
    return new ClientError('INVALID_TOPIC', { reason: 'malformed percent-encoding in the path id' });
  }
  const topics = defaultTopics(stream, id);
  if (topics.some((t) => parseTopic(t) === null)) return new ClientError('INVALID_TOPIC', { reason: `invalid ${stream} id`, id });
  if (stream !== 'market' && stream !== 'auction' && id !== principal.sub) return new ClientError('FORBIDDEN', { reason: 'path user_id must match the token subject' });
  return topics;
}

/** Answers an upgrade nobody serves with a plain HTTP error, then closes the connection. */
function refuseUpgrade(socket: Duplex, path: string): void {
  const status = httpStatusOf('NOT_FOUND');
  const body = JSON.stringify(errorEnvelope('NOT_FOUND', { path, reason: `WebSocket endpoints are under ${API_PREFIX}` }));
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
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
