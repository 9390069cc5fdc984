import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/protocol/messages.js';
import { latestRanges } from '../../src/store/deliveries.js';
import { RedisDeliveryLog } from '../../src/store/redis/redis-deliveries.js';
import { connect, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startGateway, stopAll, type GatewayProcess } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, TEST_SECRET, token, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * The crash bound the README states: a `bondx gateway` process on Redis, SIGKILLed while it delivers,
 * leaves a delivery record that lacks at most the last flush interval. Its live range is still open
 * (`end: null`: nothing closed it) and reaches at least the seq the client had one interval (plus the
 * write's own time) before the kill, never beyond what the client received.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the delivery record crash test');
const PREFIX = `dl-crash-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const USER = `crash-${PREFIX}`;
const FLUSH_MS = 500;
/** Time a flush may take to reach Redis after its interval fires, on a loaded 2-core box running the suite. */
const WRITE_MARGIN_MS = 1000;

let redis: Redis;
let writer: TestSystem;
let gateway: GatewayProcess;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  writer = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
  gateway = await startGateway({ REDIS_URL, REDIS_PREFIX: PREFIX, JWT_SECRET: TEST_SECRET, SIMULATOR: 'false', KAFKA_BROKERS: '', AUDIT_DELIVERY_FLUSH_MS: String(FLUSH_MS) });
  await writer.ingest.submit(quote(ISIN), 'test');
}, 60_000);

afterAll(async () => {
  await stopAll();
  await writer.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
});

describe('delivery record when a gateway crashes', () => {
  it('loses at most the last flush interval', async () => {
    const socket = await connect(gateway.url, '/market', token(USER));
    const received: { at: number; seq: number }[] = [];
    socket.on('delta', (e: Envelope) => received.push({ at: Date.now(), seq: e.seq as number }));
    await request(socket, 'subscribe', { topic: TOPIC });
    for (let i = 0; i < 150; i++) {
      await writer.ingest.submit(quote(ISIN, 99 + (i % 50) / 100, 99.6), 'test');
      await sleep(20);
    }
    await waitFor(() => received.length > 100, 10_000, 'deltas arriving');
    await gateway.kill('SIGKILL');
    const killedAt = Date.now();
    socket.close();

    const ranges = latestRanges(await new RedisDeliveryLog(redis, PREFIX, 1000).read(USER));
    const live = ranges.find((r) => r.kind === 'live');
    expect(live?.end).toBeNull();
    const last = received.at(-1)?.seq ?? 0;
    const heldBefore = [...received].reverse().find((r) => r.at <= killedAt - FLUSH_MS - WRITE_MARGIN_MS)?.seq ?? 0;
    expect(heldBefore).toBeGreaterThan(0);
    expect(live?.to_seq).toBeGreaterThanOrEqual(heldBefore);
    expect(live?.to_seq).toBeLessThanOrEqual(last);
  });
});
