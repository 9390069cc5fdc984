import { loadConfig } from '../../src/config/config.js';
import { issueToken, jwtKeysFromConfig, type JwtKeys } from '../../src/gateway/auth.js';
import type { HealthReport } from '../../src/gateway/http-api.js';
import type { Ingest } from '../../src/ingest/ingest.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { GatewayServer } from '../../src/runtime/gateway-server.js';
import { startSystem, type System } from '../../src/runtime/system.js';

/**
 * The system under test, in this process or (through processes.ts) as role processes: its settings,
 * its tokens and its health, the same for tests and benchmarks.
 */

export const TEST_SECRET = 'test-secret-with-enough-entropy-0123456789';
const TEST_KEYS: JwtKeys = { algorithm: 'HS256', verifyKey: TEST_SECRET, signKey: TEST_SECRET, generated: false };

/** A token any system or role process started with JWT_SECRET=TEST_SECRET accepts. */
export function token(sub: string, role?: string, ttl = 3600): string {
  return issueToken(TEST_KEYS, { sub, ttl, ...(role ? { role } : {}) });
}

/**
 * Admission limits out of the way: tests and benchmarks open hundreds or thousands of connections per
 * user from one address, in bursts. A test about admission sets its own.
 */
export const ROOMY_ADMISSION: Record<string, string> = {
  WS_CONNECT_RATE_PER_IP: '100000',
  WS_CONNECT_RATE_PER_USER: '100000',
  WS_MAX_CONNECTIONS_PER_USER: '10000',
};

/** A real single-process system on a free loopback port, simulator off unless asked. */
export type TestSystem = System & { server: GatewayServer; ingest: Ingest; metricsUrl: string; token: (sub: string, role?: string, ttl?: number) => string };

export async function startTestSystem(env: Record<string, string> = {}, opts: { simulator?: boolean } = {}): Promise<TestSystem> {
  const config = loadConfig({
    PORT: '0',
    PROMETHEUS_PORT: '0',
    HOST: '127.0.0.1',
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'silent',
    SIMULATOR: 'false',
    ...ROOMY_ADMISSION,
    ...env,
  });
  const keys = jwtKeysFromConfig(config);
  const system = await startSystem(config, silentLogger, { projector: true, gateway: true, simulator: opts.simulator ?? false }, keys);
  if (!system.server || !system.ingest) throw new Error('test system needs the gateway and projector roles');
  return Object.assign(system, { server: system.server, ingest: system.ingest, metricsUrl: `${system.metricsServer.url}/metrics`, token: (sub: string, role?: string, ttl = 3600) => issueToken(keys, { sub, ttl, ...(role ? { role } : {}) }) });
}

/** `GET /api/v1/ws/health` as a client reads it (see http-api.ts). */
export type HealthBody = Omit<HealthReport, 'ready' | 'readyReasons'> & {
  connections: { total: number; by_stream: Record<string, number>; by_transport: Record<string, number> };
  cluster?: { gateways: number; total: number };
};

/** The health body of the gateway at `url`, checking the HTTP status machines read: 503 exactly when `down`. */
export async function health(url: string): Promise<HealthBody> {
  const res = await fetch(`${url}/api/v1/ws/health`);
  const body = (await res.json()) as HealthBody;
  const expected = body.status === 'down' ? 503 : 200;
  if (res.status !== expected) throw new Error(`health answered HTTP ${res.status} with status ${body.status} (expected HTTP ${expected})`);
  return body;
}
