import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import type { Redis } from 'ioredis';
import { io as ioClient } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, openClient, type TestClient } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startGateway, stopAll, type GatewayProcess } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { health, ROOMY_ADMISSION, startTestSystem, TEST_SECRET, token, type HealthBody, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * `bondx gateway` with WS_WORKERS=2 (the same as `--workers 2`): two full gateway processes on one
 * port, each serving its share of the connections from Redis, supervised by the primary (a dead
 * worker is replaced, SIGTERM stops all). Events are committed to the same Redis by an in-process
 * projector, as `bondx projector` would.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the gateway workers tests');
const PREFIX = `workers-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const env = { REDIS_URL, REDIS_PREFIX: PREFIX, JWT_SECRET: TEST_SECRET, ...ROOMY_ADMISSION };

/** The two workers, and the in-process system's own gateway on the same Redis. */
const GATEWAYS = 3;

let redis: Redis;
let ingest: TestSystem;
let gateway: GatewayProcess;
const clients: TestClient[] = [];

/** The primary's worker processes (its children), from /proc. */
function workerPids(primary: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === primary;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The connections of whichever worker answers a health request on a fresh TCP connection. */
function localConnections(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(`${url}/api/v1/ws/health`, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve((JSON.parse(body) as HealthBody).connections.total));
    }).on('error', reject);
  });
}

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  ingest = await startTestSystem(env);
  gateway = await startGateway({ ...env, WS_WORKERS: '2' });
  await waitFor(async () => (await health(gateway.url)).cluster?.gateways === GATEWAYS, 20_000, () => `both workers in the cluster view\n${gateway.describe()}`, 100);
}, 60_000);

afterAll(async () => {
  for (const c of clients) c.close();
  await stopAll();
  await ingest?.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
});

describe('bondx gateway with two workers', () => {
  it('spreads connections over both workers, and every client gets every delta', async () => {
    for (let i = 0; i < 10; i++) clients.push(await openClient(i % 2 === 0 ? 'websocket' : 'socketio', gateway.url, 'market', ISIN, token(`trader-${i}`)));
    // Round-robin: both workers hold connections (each gateway counts its own in the cluster view).
    await waitFor(async () => (await health(gateway.url)).cluster?.total === 10, 10_000, 'ten connections across the cluster', 100);
    // Each request on a new connection, so they reach both workers: each holds some, neither all.
    const seen = new Set<number>();
    for (let i = 0; i < 10; i++) seen.add(await localConnections(gateway.url));
    expect([...seen].every((n) => n > 0 && n < 10)).toBe(true);

    const event = quote(ISIN, 99.42, 99.44);
    expect((await ingest.ingest.submit(event, 'test')).status).toBe('applied');
    await waitFor(() => clients.every((c) => c.received.some((e) => e.type === 'delta' && e.correlation_id === event.event_id)), 10_000, 'the delta on every client');
  });

  it('serves Socket.IO over WebSocket only: a long-polling client is refused at once', async () => {
    const socket = ioClient(`${gateway.url}/market`, { transports: ['polling'], reconnection: false, auth: { token: token('poller') } });
    const error = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
    socket.close();
    expect(error.message).toMatch(/xhr poll error|transport/i);
    await expect(connect(gateway.url, '/market', token('ws-user'))).resolves.toMatchObject({ connected: true });
  });

  it('replaces a worker that dies, and stops every worker on SIGTERM', async () => {
    const [victim] = workerPids(gateway.pid);
    expect(victim).toBeDefined();
    process.kill(victim as number, 'SIGKILL');
    await waitFor(() => workerPids(gateway.pid).length === 2 && !workerPids(gateway.pid).includes(victim as number), 15_000, 'a new second worker', 100);
    await waitFor(async () => (await health(gateway.url)).cluster?.gateways === GATEWAYS, 20_000, 'both workers again', 100);

    const workers = workerPids(gateway.pid);
    const exit = await gateway.kill('SIGTERM');
    expect(exit.code).toBe(0);
    expect(workers.filter((pid) => readdirSync('/proc').includes(String(pid)))).toEqual([]);
  });
});
