import type { Server as HttpServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { Server, type Namespace, type ServerOptions, type Socket } from 'socket.io';
import { STREAMS, type Stream } from '../../domain/topics.js';
import { ClientError, type ErrorCode } from '../../protocol/errors.js';
import type { Envelope } from '../../protocol/messages.js';
import { parseClientMessage, peekMessage } from '../../protocol/parse.js';
import { DEFLATE_OPTIONS } from '../deflate.js';
import { tokenFromRequest } from '../../gateway/auth.js';
import { errorEnvelope } from '../../gateway/envelope.js';
import type { Admitted, Gateway } from '../../gateway/gateway.js';
import type { ClientLink, Session } from '../../gateway/session.js';
import type { Broadcast, Room } from '../../gateway/hub.js';
import type { ClusterView } from '../../gateway/http-api.js';

/**
 * Socket.IO transport: one namespace per stream, one Socket.IO room per (topic, filter). Live entries
 * are broadcast with `nsp.local`, so each gateway emits only to its own sockets from its own feed:
 * market data never takes a Redis round trip per message even when the Redis adapter is installed.
 */
export interface SocketIoOptions {
  maxMessageBytes: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** The cross-gateway adapter (Redis Streams) when gateways are scaled out. */
  adapter?: ServerOptions['adapter'];
  /**
   * Serve the compressed flavour (permessage-deflate) at {@link DEFLATE_PATH}. It is a separate engine
   * because engine.io turns deflate on per server, and a deflating server cannot send the pre-encoded
   * frames that make a plain broadcast serialise once for all sockets.
   */
  deflate: boolean;
}

/** Where Socket.IO clients connect by default, and those that want compression (`io(url, { path: DEFLATE_PATH })`). */
const SOCKET_IO_PATH = '/socket.io';
export const DEFLATE_PATH = '/socket.io-deflate';

export function attachSocketIo(httpServer: HttpServer, gateway: Gateway, opts: SocketIoOptions): Server {
  const io = new Server(httpServer, {
    ...(opts.adapter ? { adapter: opts.adapter } : {}),
    path: opts.deflate ? DEFLATE_PATH : SOCKET_IO_PATH,
    // Frames beyond this are cut by engine.io; below it, oversize messages get PAYLOAD_TOO_LARGE from us.
    maxHttpBufferSize: Math.max(opts.maxMessageBytes * 4, 1 << 20),
    pingInterval: opts.pingIntervalMs,
    pingTimeout: opts.pingTimeoutMs,
    serveClient: !opts.deflate,
    // Compression is opt-in per connection: only the deflate engine negotiates it.
    perMessageDeflate: opts.deflate ? DEFLATE_OPTIONS : false,
    // The plain-WebSocket API shares the HTTP server's upgrades; engine.io must leave those alone.
    destroyUpgrade: false,
    cors: { origin: true },
  });
  const flavour = opts.deflate ? 'sioz' : 'sio';
  for (const stream of STREAMS) attachNamespace(io.of(`/${stream}`), stream, `${flavour}:/${stream}`, gateway, opts.maxMessageBytes);
  return io;
}

/** The prefix engine.io answers upgrades and polling on (it matches the raw URL against it). */
export function enginePathPrefix(io: Server): string {
  return `${io.path()}/`;
}

/**
 * The cluster through one engine's adapter: a server-side emit reaches the same engine on every
 * gateway of the Redis, and each answers for all of its own sessions (Socket.IO on either engine and
 * plain WebSocket alike, through the Gateway's registry). `crossNode` is false without a real adapter
 * (one gateway): the in-memory one never answers a server-side emit.
 */
export function clusterView(io: Server, gateway: Gateway, crossNode: boolean): ClusterView {
  io.on('bondx:connections', (reply: (count: number) => void) => reply(gateway.connectionCounts().total));
  io.on('bondx:disconnect-user', (userId: unknown, reply: (count: number) => void) => reply(typeof userId === 'string' ? gateway.disconnectUser(userId) : 0));
  /** What the other gateways answered; after the adapter's timeout, those that did. */
  const others = (event: string, ...args: string[]): Promise<number[]> =>
    crossNode
      ? new Promise((resolve) => io.serverSideEmit(event, ...args, (_err: Error | null, replies: unknown[]) => resolve(replies.filter((n): n is number => typeof n === 'number'))))
      : Promise.resolve([]);
  const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
  return {
    async disconnectUser(userId) {
      const here = gateway.disconnectUser(userId);
      return here + sum(await others('bondx:disconnect-user', userId));
    },
    async connections() {
      const counts = [gateway.connectionCounts().total, ...(await others('bondx:connections'))];
      return { gateways: counts.length, total: sum(counts) };
    },
  };
}

/** `transport` names this engine and namespace in room names, e.g. `sio:/market` or `sioz:/market`. */
function attachNamespace(nsp: Namespace, stream: Stream, transport: string, gateway: Gateway, maxMessageBytes: number): void {
  const broadcast = (roomName: string, envelope: Envelope) => nsp.local.to(roomName).emit(envelope.type, envelope);

  nsp.use((socket, next) => {
    gateway.admit(stream, 'socketio', socket.handshake.address, handshakeToken(socket)).then(
      (admitted) => {
        socket.data.admitted = admitted;
        next();
      },
      (err: unknown) => {
        const clientError = err instanceof ClientError ? err : new ClientError('INTERNAL_ERROR');
        next(Object.assign(new Error(clientError.message), { data: { code: clientError.code, details: clientError.details } }));
      },
    );
  });

  const context: NamespaceContext = { stream, transport, broadcast, gateway, maxMessageBytes };
  nsp.on('connection', (socket) => {
    const client = new SocketIoClient(socket, context);
    socket.onAny((kind: unknown, data: unknown, ...rest: unknown[]) => client.receive(kind, data, rest));
    socket.on('disconnect', (reason) => gateway.closeSession(client.session, reason));
  });
}

/** What every connection of a namespace shares (one object per namespace, not per socket). */
interface NamespaceContext {
  stream: Stream;
  transport: string;
  broadcast: Broadcast;
  gateway: Gateway;
  maxMessageBytes: number;
}

/**
 * One Socket.IO connection: its ClientLink and message handling. A class rather than closures, so an
 * idle connection costs a few fields, not a dozen function objects (see the memory benchmark).
 */
class SocketIoClient implements ClientLink {
  readonly session: Session;

  constructor(
    private readonly socket: Socket,
    private readonly context: NamespaceContext,
  ) {
    const { principal, release } = socket.data.admitted as Admitted;
    socket.data.admitted = undefined;
    this.session = context.gateway.openSession(principal, context.stream, this, { transport: 'socketio', headers: socket.handshake.headers }, release);
    if (socket.handshake.headers['x-background-mode'] === 'true') void this.session.setBackground(true);
  }

  get id(): string {
    return this.socket.id;
  }

  get transport(): string {
    return this.context.transport;
  }

  get broadcast(): Broadcast {
    return this.context.broadcast;
  }

  send(envelope: Envelope): void {
    this.socket.emit(envelope.type, envelope);
  }

  queued(): number {
    return pendingPackets(this.socket);
  }

  close(code: ErrorCode, details?: Record<string, unknown>): void {
    this.send(errorEnvelope(code, details));
    this.socket.disconnect(true);
  }

  joinRoom(room: Room): void {
    void this.socket.join(room.name);
  }

  leaveRoom(room: Room): void {
    void this.socket.leave(room.name);
  }

  /** `socket.onAny` arguments: the kind, the message, and possibly an ack callback last. */
  receive(kind: unknown, data: unknown, rest: unknown[]): void {
    const last = rest.length > 0 ? rest[rest.length - 1] : data;
    const ack = typeof last === 'function' ? (last as (reply: Envelope) => void) : undefined;
    void this.handle(String(kind), typeof data === 'function' ? undefined : data, ack);
  }

  private async handle(kind: string, data: unknown, ack: ((reply: Envelope) => void) | undefined): Promise<void> {
    const { gateway, stream, maxMessageBytes } = this.context;
    gateway.messageReceived(stream, kind);
    const correlationId = peekMessage(data).correlationId ?? randomUUID();
    let reply: Envelope;
    try {
      reply = await this.session.dispatch(parseClientMessage(kind, data, maxMessageBytes));
    } catch (err) {
      reply = gateway.errorReply(this.session, err, correlationId);
    }
    if (this.socket.connected) {
      this.session.send(reply);
      ack?.(reply);
    }
  }
}

/**
 * Packets engine.io holds for this socket while its transport is busy writing: the outbound queue.
 * `writeBuffer` is not in engine.io's public types, hence the narrow cast; a test guards that it still
 * exists (test/integration/socketio-gateway.test.ts), since flow control would go blind without it.
 */
export function pendingPackets(socket: Socket): number {
  return (socket.conn as unknown as { writeBuffer?: unknown[] }).writeBuffer?.length ?? 0;
}

/** Socket.IO's own `auth.token` first, then the two ways every endpoint accepts (header, query). */
function handshakeToken(socket: Socket): string | undefined {
  const auth: unknown = socket.handshake.auth;
  if (auth && typeof auth === 'object' && 'token' in auth && typeof auth.token === 'string') return auth.token;
  return tokenFromRequest(socket.handshake.headers, socket.handshake.url);
}
