import type { Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { Server, type Namespace, type ServerOptions, type Socket } from 'socket.io';
import { STREAMS, type Stream } from '../../domain/topics.js';
import { ClientError } from '../../protocol/errors.js';
import { CLIENT_MESSAGE_KINDS, isClientMessageKind, type Envelope } from '../../protocol/messages.js';
import type { ClientToServerEvents, ServerEmits } from '../../protocol/socketio-events.js';
import { DEFLATE_OPTIONS } from '../deflate.js';
import { tokenFromRequest } from '../../gateway/auth.js';
import type { Connection } from '../../gateway/connection.js';
import type { Admitted, Gateway } from '../../gateway/gateway.js';
import type { ClusterView } from '../../gateway/http-api.js';
import type { Fanout, Frame, Link } from '../../gateway/link.js';
import { turnEnd, type TurnTask } from '../../gateway/turn.js';

/**
 * Socket.IO transport: one namespace per stream, one Socket.IO room per gateway room. Live entries
 * are broadcast with `nsp.local`, so each gateway emits only to its own sockets from its own feed:
 * market data never takes a Redis round trip per message even when the Redis adapter is installed.
 * Everything a connection does is the gateway's (gateway/connection.ts); this file only carries events.
 */
export interface SocketIoOptions {
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
  /**
   * WebSocket only, no long-polling: for a gateway worker sharing its port with others (node:cluster
   * spreads requests over workers, and a polling session's requests must all reach the one that holds
   * it). A polling client is refused at once instead of failing at random later.
   */
  websocketOnly: boolean;
}

/** Gateway → gateway events over the adapter (cluster-wide counts and disconnects). */
interface InterServerEvents {
  'bondx:connections': (reply: (count: number) => void) => void;
  'bondx:disconnect-user': (userId: unknown, reply: (count: number) => void) => void;
}

/** What the admission middleware leaves on the socket for its `connection` handler. */
interface SocketData {
  admitted?: Admitted;
}

type BondxServer = Server<ClientToServerEvents, ServerEmits, InterServerEvents, SocketData>;
type BondxSocket = Socket<ClientToServerEvents, ServerEmits, InterServerEvents, SocketData>;

/** Where Socket.IO clients connect by default, and those that want compression (`io(url, { path: DEFLATE_PATH })`). */
const SOCKET_IO_PATH = '/socket.io';
export const DEFLATE_PATH = '/socket.io-deflate';

export function attachSocketIo(httpServer: HttpServer, gateway: Gateway, opts: SocketIoOptions): BondxServer {
  const io: BondxServer = new Server(httpServer, {
    ...(opts.adapter ? { adapter: opts.adapter } : {}),
    path: opts.deflate ? DEFLATE_PATH : SOCKET_IO_PATH,
    ...(opts.websocketOnly ? { transports: ['websocket' as const] } : {}),
    maxHttpBufferSize: gateway.maxFrameBytes,
    pingInterval: opts.pingIntervalMs,
    pingTimeout: opts.pingTimeoutMs,
    serveClient: !opts.deflate,
    // Compression is opt-in per connection: only the deflate engine negotiates it.
    perMessageDeflate: opts.deflate ? DEFLATE_OPTIONS : false,
    // The plain-WebSocket API shares the HTTP server's upgrades; engine.io must leave those alone.
    destroyUpgrade: false,
    cors: { origin: true },
  });
  io.engine.on('flush', turnCorks.flushing);
  const flavour = opts.deflate ? 'sioz' : 'sio';
  for (const stream of STREAMS) attachNamespace(io.of(`/${stream}`), stream, `${flavour}:/${stream}`, gateway);
  return io;
}

/**
 * Corks a WebSocket connection's TCP socket at its first flush in an event-loop turn and uncorks them all
 * at the turn's end (gateway/turn.ts), so the packets of a turn leave in one writev, as on the plain
 * WebSocket path. engine.io writes each packet with its own write (one syscall each); its server emits
 * `flush` with the socket just before a socket's buffered packets go out. ws keeps the TCP socket in `_socket`: not public, so
 * read defensively (a transport without it, or polling, is simply not corked).
 */
class TurnCorks implements TurnTask {
  private readonly corked = new Set<Duplex>();

  readonly flushing = (engineSocket: { transport?: { name?: string } }): void => {
    const tcp = engineSocket.transport?.name === 'websocket' ? (engineSocket.transport as { socket?: { _socket?: Duplex } }).socket?._socket : undefined;
    if (!tcp || this.corked.has(tcp)) return;
    tcp.cork();
    this.corked.add(tcp);
    turnEnd.defer('writes', this);
  };

  turnEnded(): void {
    for (const tcp of this.corked) tcp.uncork();
    this.corked.clear();
  }
}

const turnCorks = new TurnCorks();

/** The prefix engine.io answers upgrades and polling on (it matches the raw URL against it). */
export function enginePathPrefix(io: Server): string {
  return `${io.path()}/`;
}

/**
 * The cluster through one engine's adapter: a server-side emit reaches the same engine on every
 * gateway of the Redis, and each answers for all of its own connections (Socket.IO on either engine and
 * plain WebSocket alike, through the Gateway's registry). `crossNode` is false without a real adapter
 * (one gateway): the in-memory one never answers a server-side emit.
 */
export function clusterView(io: BondxServer, gateway: Gateway, crossNode: boolean): ClusterView {
  io.on('bondx:connections', (reply) => reply(gateway.connectionCounts().total));
  io.on('bondx:disconnect-user', (userId, reply) => reply(typeof userId === 'string' ? gateway.disconnectUser(userId) : 0));
  /** What the other gateways answered (numbers only: they are other processes); after the adapter's timeout, those that did. */
  const others = (emit: (done: (err: Error, replies: unknown[]) => void) => void): Promise<number[]> =>
    crossNode ? new Promise((resolve) => emit((_err, replies) => resolve(replies.filter((n): n is number => typeof n === 'number')))) : Promise.resolve([]);
  const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);
  return {
    async disconnectUser(userId) {
      const here = gateway.disconnectUser(userId);
      return here + sum(await others((done) => io.serverSideEmit('bondx:disconnect-user', userId, done)));
    },
    async connections() {
      const counts = [gateway.connectionCounts().total, ...(await others((done) => io.serverSideEmit('bondx:connections', done)))];
      return { gateways: counts.length, total: sum(counts) };
    },
  };
}

/** `name` names this engine and namespace in room names, e.g. `sio:/market` or `sioz:/market`. */
function attachNamespace(nsp: Namespace<ClientToServerEvents, ServerEmits, InterServerEvents, SocketData>, stream: Stream, name: string, gateway: Gateway): void {
  const fanout: Fanout = { name, broadcast: (roomName: string, envelope: Envelope) => nsp.local.to(roomName).emit(envelope.type, envelope) };

  nsp.use((socket, next) => {
    gateway.admit(stream, 'socketio', socket.handshake.address, handshakeToken(socket)).then(
      (admitted) => {
        socket.data.admitted = admitted;
        next();
      },
      (err: unknown) => {
        // Socket.IO's refusal form: `connect_error` with the code and details in `err.data`.
        const refusal = ClientError.from(err);
        next(Object.assign(new Error(refusal.message), { data: { code: refusal.code, details: refusal.details } }));
      },
    );
  });

  nsp.on('connection', (socket) => {
    const { admitted } = socket.data;
    if (!admitted) return void socket.disconnect(true); // only the middleware above lets sockets in
    socket.data.admitted = undefined;
    const connection = gateway.open(admitted, new SocketIoLink(socket), fanout, { stream, transport: 'socketio', headers: socket.handshake.headers });
    // Typed as the contract says, but read as unknown: they come from the client, and are validated.
    for (const kind of CLIENT_MESSAGE_KINDS) socket.on(kind, (...args: unknown[]) => receive(connection, kind, args));
    // Any other event is answered too (INVALID_MESSAGE), as a WebSocket frame of an unknown type is.
    socket.onAny((kind: unknown, ...args: unknown[]) => {
      if (typeof kind !== 'string' || !isClientMessageKind(kind)) receive(connection, String(kind), args);
    });
    socket.on('disconnect', (reason) => connection.end(reason));
  });
}

/** An event's arguments: the message (absent for `emit('ping')`), and possibly an ack callback last. */
function receive(connection: Connection, kind: string, args: unknown[]): void {
  const last = args[args.length - 1];
  const ack = typeof last === 'function' ? last : undefined;
  const data = typeof args[0] === 'function' ? undefined : args[0];
  void connection.receive({ kind, data }).then((reply) => {
    if (reply) ack?.(reply);
  });
}

/** One socket as the gateway's Link. A class rather than closures: an idle connection costs a few fields. */
class SocketIoLink implements Link {
  constructor(private readonly socket: BondxSocket) {}

  get id(): string {
    return this.socket.id;
  }

  write(frame: Frame): void {
    this.socket.emit(frame.envelope.type, frame.envelope);
  }

  buffered(): number {
    return pendingPackets(this.socket);
  }

  /** Socket.IO has no close codes: the error event already said why. */
  close(): void {
    this.socket.disconnect(true);
  }

  join(roomName: string): void {
    void this.socket.join(roomName);
  }

  leave(roomName: string): void {
    void this.socket.leave(roomName);
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
function handshakeToken(socket: BondxSocket): string | undefined {
  const auth: unknown = socket.handshake.auth;
  if (typeof auth === 'object' && auth !== null && 'token' in auth && typeof auth.token === 'string') return auth.token;
  return tokenFromRequest(socket.handshake.headers, socket.handshake.url);
}
