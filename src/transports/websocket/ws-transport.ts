import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { isStream } from '../../domain/topics.js';
import { tokenFromRequest } from '../../gateway/auth.js';
import type { Connection } from '../../gateway/connection.js';
import { errorEnvelope } from '../../gateway/envelope.js';
import type { Gateway } from '../../gateway/gateway.js';
import { Frame, type Fanout, type Link } from '../../gateway/link.js';
import { turnEnd, type TurnTask } from '../../gateway/turn.js';
import type { Logger } from '../../observability/logger.js';
import { ClientError, closeCodeOf, httpStatusOf } from '../../protocol/errors.js';
import { DEFLATE_OPTIONS } from '../deflate.js';
import { textFrame } from './wire.js';

/** How long shutdown waits for clients to complete their close handshake. */
const CLOSE_GRACE_MS = 1000;

/** Where this API lives; every other upgrade belongs to `otherUpgradePaths` or is refused. */
const API_PREFIX = '/api/v1/ws/';
const PATH = new RegExp(`^${API_PREFIX}([a-z]+)/([^/]+)$`);

export interface WebSocketOptions {
  heartbeatIntervalS: number;
  connectionTimeoutS: number;
  /**
   * Path prefixes whose upgrades another listener on the same HTTP server answers (engine.io's, e.g.
   * `/socket.io/`). An upgrade matching neither these nor the API is answered 404 and closed here:
   * no listener would answer it otherwise, and the client would wait forever.
   */
  otherUpgradePaths: readonly string[];
}

/** Plain WebSocket has no rooms of its own: a room writes its one serialised frame to each member's link. */
const FANOUT: Fanout = { name: 'ws' };

/**
 * The product's plain-WebSocket API at `/api/v1/ws/{stream}/{id}`, for clients that do not speak
 * Socket.IO: upgrades, the path's stream, liveness pings; everything else is the gateway's connection.
 */
export function attachWebSocket(httpServer: HttpServer, gateway: Gateway, log: Logger, opts: WebSocketOptions): { close(): Promise<void> } {
  const wss = new WebSocketServer({ noServer: true, maxPayload: gateway.maxFrameBytes, perMessageDeflate: DEFLATE_OPTIONS });
  const open = new Map<WsLink, Connection>();

  httpServer.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // engine.io matches its path as a prefix of the raw URL, query string included.
    const url = req.url ?? '/';
    if (opts.otherUpgradePaths.some((prefix) => url.startsWith(prefix))) return;
    if (!url.startsWith(API_PREFIX)) return refuseUpgrade(socket, new URL(url, 'http://localhost').pathname);
    wss.handleUpgrade(req, socket, head, (ws) => {
      // Frames a client sends right after the handshake wait until the connection listens for them.
      ws.pause();
      const link = new WsLink(ws, socket);
      accept(link, req)
        .catch((err: unknown) => {
          log.error({ err }, 'websocket accept failed');
          link.refuse(err);
        })
        .finally(() => ws.resume());
    });
  });

  async function accept(link: WsLink, req: IncomingMessage): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = PATH.exec(url.pathname);
    const stream = match?.[1] ?? '';
    // An unknown stream is refused before authentication; the path id only after it (by the gateway).
    if (!isStream(stream)) return link.refuse(new ClientError('INVALID_TOPIC', { reason: `unknown stream path ${url.pathname}` }));
    // Compressed frames by default for mobile apps; a subscribe's `compression` switches it.
    link.compress(stream === 'mobile');
    let connection: Connection;
    try {
      const admitted = await gateway.admit(stream, 'websocket', req.socket.remoteAddress ?? 'unknown', tokenFromRequest(req.headers, req.url));
      if (!link.isOpen) return admitted.release(); // the client left while we checked
      connection = gateway.open(admitted, link, FANOUT, { stream, transport: 'websocket', headers: req.headers, path: { id: match?.[2] ?? '', resume: url.searchParams.get('resume') } });
    } catch (err) {
      return link.refuse(err);
    }
    open.set(link, connection);
    const { ws } = link;
    ws.on('pong', () => link.seen());
    ws.on('message', (data: RawData, isBinary: boolean) => {
      link.seen();
      const bytes = rawBytes(data);
      void connection.receive({ frame: isBinary ? bytes : bytes.toString('utf8') });
    });
    ws.on('close', () => {
      open.delete(link);
      connection.end('client closed');
    });
    ws.on('error', (err) => log.debug({ err: err.message, conn: link.id }, 'websocket error'));
  }

  // Liveness: ping every heartbeat interval; a client silent (not even a pong) past the timeout is closed.
  const liveness = setInterval(() => {
    const deadline = Date.now() - opts.connectionTimeoutS * 1000;
    for (const [link, connection] of open) {
      if (link.lastSeen < deadline) {
        log.info({ user: connection.principal.sub }, 'closing silent websocket connection');
        connection.close('CONNECTION_ERROR', { reason: `silent for more than ${opts.connectionTimeoutS}s` });
        link.ws.terminate();
      } else link.ws.ping();
    }
  }, Math.min(opts.heartbeatIntervalS, opts.connectionTimeoutS) * 1000);
  liveness.unref();

  return {
    /** Waits briefly for close handshakes already under way (e.g. after a drain), then cuts the rest. */
    async close() {
      clearInterval(liveness);
      const closing = [...open.keys()].map((link) => new Promise((resolve) => link.ws.once('close', resolve)));
      await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS))]);
      for (const link of open.keys()) link.ws.terminate();
      wss.close();
    },
  };
}

/** One socket as the gateway's Link. A class rather than closures: an idle connection costs a few fields. */
class WsLink implements Link, TurnTask {
  readonly id = randomUUID();
  lastSeen = Date.now();
  /** Frames handed to the socket (or to ws) whose write has not completed yet: the outbound queue. */
  private pending = 0;
  /** Of those, the ones handed to ws: while any is outstanding, later frames go through ws too (order). */
  private viaWs = 0;
  /** permessage-deflate for this connection's frames (`compression` of a subscribe). */
  private deflate = false;
  /** Corked since its first write of this turn: the turn's frames leave in one writev (one syscall). */
  private corked = false;

  /**
   * `socket` is the upgraded TCP socket ws itself writes to: uncompressed frames are written there
   * directly, pre-framed and shared by the room, since ws would encode and frame the text again for
   * every socket. Compressed frames need ws's per-connection deflate, and ws owns control frames.
   */
  constructor(
    readonly ws: WebSocket,
    private readonly socket: Duplex,
  ) {}

  get isOpen(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  seen(): void {
    this.lastSeen = Date.now();
  }

  write(frame: Frame): void {
    if (!this.isOpen) return;
    this.pending++;
    // ws queues frames behind a deflate in progress: until its sends are done, ours must queue there too.
    if (this.deflate || this.viaWs > 0) {
      this.viaWs++;
      this.ws.send(frame.text, { compress: this.deflate }, this.sentViaWs);
      return;
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      turnEnd.defer('writes', this);
    }
    this.socket.write(frame.encoded(textFrame), this.written);
  }

  turnEnded(): void {
    this.corked = false;
    this.socket.uncork();
  }

  private readonly written = (): void => {
    this.pending--;
  };

  private readonly sentViaWs = (): void => {
    this.pending--;
    this.viaWs--;
  };

  buffered(): number {
    return this.pending;
  }

  close(code: number, reason: string): void {
    this.ws.close(code, reason);
  }

  compress(enabled: boolean): void {
    this.deflate = enabled;
  }

  /** A connection that is not accepted: one error frame, then the code's close code. */
  refuse(err: unknown): void {
    const refusal = ClientError.from(err);
    this.write(new Frame(errorEnvelope(refusal.code, refusal.details)));
    this.close(closeCodeOf(refusal.code), refusal.code);
  }
}

/** Answers an upgrade nobody serves with a plain HTTP error, then closes the connection. */
function refuseUpgrade(socket: Duplex, path: string): void {
  const status = httpStatusOf('NOT_FOUND');
  const body = JSON.stringify(errorEnvelope('NOT_FOUND', { path, reason: `WebSocket endpoints are under ${API_PREFIX}` }));
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

function rawBytes(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data);
}
