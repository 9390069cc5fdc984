import { io, type Socket } from 'socket.io-client';
import type { Stream } from '../../../src/domain/topics.js';
import type { ClientMessage, Envelope, ErrorEnvelope } from '../../../src/protocol/messages.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../../../src/protocol/socketio-events.js';
import { BondxError } from './errors.js';

/**
 * One connection to one stream (a Socket.IO namespace, or a plain WebSocket path), over either transport.
 * The SDK reconnects itself (with backoff, a fresh token and resume positions), so neither transport's
 * own reconnection is used: a Channel lives for one connection only.
 */

export type TransportName = 'socketio' | 'websocket';

export interface ChannelHandlers {
  open(): void;
  /** Every envelope the server sends, in arrival order (batches still packed). */
  envelope(env: Envelope): void;
  /** The connection ended or never opened; `error`: what the server said about it, if it said anything. */
  closed(error: BondxError | undefined): void;
}

export interface ChannelTarget {
  url: string;
  stream: Stream;
  token: string;
  /** WebSocket only: the path's id (`/api/v1/ws/{stream}/{id}`) and its `?resume=` value. */
  pathId: string;
  resume: string;
}

export interface Channel {
  send(message: ClientMessage): void;
  /** Closes the connection; resolves once it is closed. `closed` is not called for it. */
  close(): Promise<void>;
}

export function openChannel(transport: TransportName, target: ChannelTarget, handlers: ChannelHandlers): Channel {
  return transport === 'socketio' ? socketIoChannel(target, handlers) : webSocketChannel(target, handlers);
}

/** A server-initiated close is announced by one error envelope without a correlation id: remember it for `closed`. */
function closingError(env: Envelope): BondxError | undefined {
  return env.type === 'error' && env.correlation_id === null ? BondxError.fromEnvelope(env as ErrorEnvelope) : undefined;
}

function socketIoChannel(target: ChannelTarget, handlers: ChannelHandlers): Channel {
  const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(`${target.url}/${target.stream}`, {
    auth: { token: target.token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
  });
  let last: BondxError | undefined;
  let ended = false;
  const end = (error: BondxError | undefined) => {
    if (ended) return;
    ended = true;
    handlers.closed(error);
  };
  socket.on('connect', () => handlers.open());
  socket.on('connect_error', (err: Error & { data?: { code?: unknown; details?: Record<string, unknown> } }) => {
    const code = err.data?.code;
    end(typeof code === 'string' ? BondxError.fromEnvelope({ code, error: err.message, details: err.data?.details ?? {} } as ErrorEnvelope) : new BondxError('CONNECTION_ERROR', err.message));
    socket.close();
  });
  socket.on('disconnect', () => end(last ?? new BondxError('CONNECTION_ERROR', 'disconnected')));
  socket.onAny((_type: string, env: Envelope) => {
    last = closingError(env) ?? last;
    handlers.envelope(env);
  });
  // The reply to every message is also emitted as an event, which `onAny` hands on in order with the rest.
  const emit = socket.emit.bind(socket) as (kind: ClientMessage['type'], message: ClientMessage, ack: () => void) => void;
  return {
    send: (message) => emit(message.type, message, () => undefined),
    close: async () => {
      ended = true;
      socket.close();
    },
  };
}

type WebSocketCtor = typeof WebSocket;

/** The browser's WebSocket, or in Node (20 has none) the `ws` package's, which has the same API. */
let webSocketCtor: Promise<WebSocketCtor> | undefined;
function resolveWebSocket(): Promise<WebSocketCtor> {
  webSocketCtor ??= globalThis.WebSocket ? Promise.resolve(globalThis.WebSocket) : import('ws').then((m) => m.default as unknown as WebSocketCtor);
  return webSocketCtor;
}

function webSocketChannel(target: ChannelTarget, handlers: ChannelHandlers): Channel {
  const query = new URLSearchParams({ token: target.token, ...(target.resume ? { resume: target.resume } : {}) });
  const url = `${target.url.replace(/^http/, 'ws')}/api/v1/ws/${target.stream}/${encodeURIComponent(target.pathId)}?${query}`;
  let ws: WebSocket | undefined;
  let closing = false;
  let last: BondxError | undefined;
  /** Frames sent before the socket exists (the constructor is resolved asynchronously in Node). */
  const queue: string[] = [];
  const ready = resolveWebSocket().then((Ctor) => {
    if (closing) return;
    const socket = new Ctor(url);
    ws = socket;
    socket.onopen = () => {
      for (const frame of queue.splice(0)) socket.send(frame);
      handlers.open();
    };
    socket.onmessage = (event: MessageEvent) => {
      const env = JSON.parse(String(event.data)) as Envelope;
      last = closingError(env) ?? last;
      handlers.envelope(env);
    };
    socket.onclose = (event: CloseEvent) => {
      if (closing) return;
      handlers.closed(last ? new BondxError(last.code, last.message, last.details, event.code) : new BondxError('CONNECTION_ERROR', `closed with ${event.code}`, {}, event.code));
    };
    // Errors end in a close event, which reports them.
    socket.onerror = () => undefined;
  });
  return {
    send(message) {
      const frame = JSON.stringify(message);
      if (ws?.readyState === 1) ws.send(frame);
      else queue.push(frame);
    },
    async close() {
      closing = true;
      await ready;
      const socket = ws;
      if (!socket || socket.readyState === 3) return;
      await new Promise<void>((resolve) => {
        socket.addEventListener('close', () => resolve());
        socket.close(1000);
      });
    },
  };
}
