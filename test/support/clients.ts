import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { io as ioClient, type Socket } from 'socket.io-client';
import { defaultTopics, type Stream } from '../../src/domain/topics.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { checkReceived, checkRefusal } from './server-schemas.js';

/** Options of a Socket.IO connection: handshake headers (mobile x-*), another engine path, a connect timeout. */
export interface ConnectOptions {
  reconnection?: boolean;
  headers?: Record<string, string>;
  path?: string;
  timeoutMs?: number;
}

/** Connects a real socket.io-client (WebSocket transport) and waits for `connect` (or rejects with the connect_error). */
export function connect(url: string, namespace: string, token: string | undefined, options: ConnectOptions = {}): Promise<Socket> {
  const socket = ioClient(`${url}${namespace}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: options.reconnection ?? false,
    ...(token !== undefined ? { auth: { token } } : {}),
    ...(options.headers ? { extraHeaders: options.headers } : {}),
    ...(options.path ? { path: options.path } : {}),
    ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
  });
  // Everything the server sends this socket is checked against schemas/server (server-schemas.ts).
  socket.onAny((event: string, envelope: unknown) => checkReceived('socketio', envelope, event));
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      checkRefusal(err.data);
      socket.close();
      reject(err);
    });
  });
}

/** Emits a client message and resolves with the server's ack (or error) envelope. */
export function request(socket: Socket, kind: string, message: unknown, timeoutMs = 10_000): Promise<Envelope> {
  return socket.timeout(timeoutMs).emitWithAck(kind, message) as Promise<Envelope>;
}

/** Records every envelope a socket receives, per topic, in arrival order. */
export class Recorder {
  readonly all: Envelope[] = [];
  batches = 0;
  constructor(socket: Socket) {
    for (const type of ['snapshot', 'delta', 'alert', 'error', 'ack', 'pong', 'heartbeat']) {
      socket.on(type, (env: Envelope) => this.all.push(env));
    }
    // A batch is recorded as the envelopes it carries, so tests see one delivery order.
    socket.on('batch', (env: Envelope) => {
      this.batches++;
      this.all.push(...(env.payload as unknown as Envelope[]));
    });
  }
  of(topic: string, ...types: string[]): Envelope[] {
    return this.all.filter((e) => e.topic === topic && (types.length === 0 || types.includes(e.type)));
  }
}

/**
 * One client API over both transports, so parity tests run the very same scenario on Socket.IO and
 * on plain WebSocket. Connecting subscribes to the stream's default topics on both (the WebSocket API
 * does it by path; for Socket.IO the client sends the subscribes).
 */
export interface TestClient {
  readonly transport: Transport;
  /** Every envelope received, batches flattened, in arrival order. */
  readonly received: Envelope[];
  /** Sends a client message and resolves with its reply (ack, pong or error). */
  request(kind: string, message: Record<string, unknown>): Promise<Envelope>;
  /** Sends a raw, possibly malformed, message and resolves with the next error. */
  sendRaw(raw: string): Promise<Envelope>;
  closed(): Promise<{ code: number | string }>;
  close(): void;
}

export type Transport = 'socketio' | 'websocket';
export const TRANSPORTS: Transport[] = ['socketio', 'websocket'];

export class RefusedError extends Error {
  constructor(
    readonly code: string,
    readonly closeCode: number | undefined,
  ) {
    super(`refused: ${code}`);
  }
}

export async function openClient(transport: Transport, baseUrl: string, stream: Stream, id: string, token: string | undefined, headers: Record<string, string> = {}): Promise<TestClient> {
  return transport === 'socketio' ? openSocketIo(baseUrl, stream, id, token, headers) : openWebSocket(baseUrl, stream, id, token, headers);
}

async function openSocketIo(baseUrl: string, stream: Stream, id: string, token: string | undefined, headers: Record<string, string>): Promise<TestClient> {
  let socket: Socket;
  try {
    socket = await connect(baseUrl, `/${stream}`, token, { headers });
  } catch (err) {
    throw new RefusedError((err as Error & { data?: { code?: string } }).data?.code ?? 'unknown', undefined);
  }
  const received: Envelope[] = [];
  // Registered now: a client-side close() fires 'disconnect' synchronously.
  const closed = new Promise<{ code: string }>((resolve) => socket.once('disconnect', (reason) => resolve({ code: reason })));
  socket.onAny((type: string, env: Envelope) => {
    if (type === 'batch') received.push(...(env.payload as unknown as Envelope[]));
    else received.push(env);
  });
  const client: TestClient = {
    transport: 'socketio',
    received,
    request: (kind, message) => request(socket, kind, { correlation_id: randomUUID(), ...message }),
    sendRaw: (raw) => request(socket, 'subscribe', raw),
    closed: () => closed,
    close: () => socket.close(),
  };
  for (const topic of defaultTopics(stream, id)) {
    const reply = await client.request('subscribe', { topic });
    if (reply.type === 'error') {
      socket.close();
      throw new RefusedError((reply as Envelope & { code: string }).code, undefined);
    }
  }
  return client;
}

async function openWebSocket(baseUrl: string, stream: Stream, id: string, token: string | undefined, headers: Record<string, string>): Promise<TestClient> {
  const url = `${baseUrl.replace('http', 'ws')}/api/v1/ws/${stream}/${encodeURIComponent(id)}${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const ws = new WebSocket(url, { headers });
  const received: Envelope[] = [];
  const waiters: { match: (e: Envelope) => boolean; resolve: (e: Envelope) => void }[] = [];
  const closed = new Promise<{ code: number }>((resolve) => ws.once('close', (code) => resolve({ code })));
  ws.on('message', (data) => {
    const env = JSON.parse(data.toString()) as Envelope;
    checkReceived('websocket', env);
    const all = env.type === 'batch' ? (env.payload as unknown as Envelope[]) : [env];
    for (const e of all) {
      received.push(e);
      const i = waiters.findIndex((w) => w.match(e));
      if (i >= 0) waiters.splice(i, 1)[0]?.resolve(e);
    }
  });
  const waitFor = (match: (e: Envelope) => boolean) => new Promise<Envelope>((resolve) => waiters.push({ match, resolve }));
  // Listen before the socket opens: frames can arrive in the same chunk as the handshake.
  const topics = defaultTopics(stream, id);
  const replies = topics.map(() => waitFor((e) => e.type === 'error' || e.type === 'ack'));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // A refused connection gets one error frame, then the close; an accepted one acks its default subscribes.
  for (const reply of replies) {
    const first = await Promise.race([reply, closed.then(() => undefined)]);
    if (!first || first.type === 'error') {
      const { code } = await closed;
      throw new RefusedError((first as (Envelope & { code?: string }) | undefined)?.code ?? 'closed', code);
    }
  }
  return {
    transport: 'websocket',
    received,
    request(kind, message) {
      const correlationId = randomUUID();
      const reply = waitFor((e) => ['ack', 'pong', 'error'].includes(e.type) && e.correlation_id === correlationId);
      ws.send(JSON.stringify({ type: kind, correlation_id: correlationId, ...message }));
      return reply;
    },
    sendRaw(raw) {
      const reply = waitFor((e) => e.type === 'error');
      ws.send(raw);
      return reply;
    },
    closed: () => closed,
    close: () => ws.close(),
  };
}
