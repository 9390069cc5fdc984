import { io as ioClient, type Socket } from 'socket.io-client';
import { loadConfig, type Config } from '../../src/config/config.js';
import { issueToken, jwtKeysFromConfig, type JwtKeys } from '../../src/gateway/auth.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Envelope } from '../../src/protocol/messages.js';
import type { Ingest } from '../../src/ingest/ingest.js';
import type { GatewayServer } from '../../src/runtime/gateway-server.js';
import { startSystem, type System } from '../../src/runtime/system.js';

export const TEST_SECRET = 'test-secret-with-enough-entropy-0123456789';

/** A real single-process system on a free loopback port, simulator off unless asked. */
export type TestSystem = System & { server: GatewayServer; ingest: Ingest; metricsUrl: string; token: (sub: string, role?: string, ttl?: number) => string };

export async function startTestSystem(env: Record<string, string> = {}, opts: { simulator?: boolean } = {}): Promise<TestSystem> {
  // Tests open hundreds of connections per user from one address: admission limits get room unless a test sets them.
  const config: Config = loadConfig({
    PORT: '0',
    PROMETHEUS_PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'silent',
    SIMULATOR: 'false',
    WS_CONNECT_RATE_PER_IP: '100000',
    WS_CONNECT_RATE_PER_USER: '100000',
    WS_MAX_CONNECTIONS_PER_USER: '10000',
    ...env,
  });
  const keys: JwtKeys = jwtKeysFromConfig(config);
  const system = await startSystem(config, silentLogger, { projector: true, gateway: true, simulator: opts.simulator ?? false }, keys);
  if (!system.server || !system.ingest) throw new Error('test system needs the gateway and projector roles');
  return Object.assign(system, { server: system.server, ingest: system.ingest, metricsUrl: `${system.metricsServer.url}/metrics`, token: (sub: string, role?: string, ttl = 3600) => issueToken(keys, { sub, ttl, ...(role ? { role } : {}) }) });
}

/** Connects a real socket.io-client and waits for `connect` (or rejects with the connect_error). */
export function connect(url: string, namespace: string, token: string | undefined, extra: { reconnection?: boolean } = {}): Promise<Socket> {
  const socket = ioClient(`${url}${namespace}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: extra.reconnection ?? false,
    ...(token !== undefined ? { auth: { token } } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
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
  async until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let counter = 0;
/** A valid quote event for `isin`; unique event_id. */
export function quote(isin: string, bid = 99.5, ask = 99.6): Record<string, unknown> {
  return { event_id: `q-${process.pid}-${++counter}`, type: 'quote', ts: new Date().toISOString(), isin, bid, ask, bid_size: 5_000_000, ask_size: 5_000_000 };
}
