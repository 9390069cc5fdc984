import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { Admission, type AdmissionLimits } from '../../src/flow/admission.js';
import { ClientError } from '../../src/protocol/errors.js';
import { redisKeys } from '../../src/store/redis/keys.js';

/**
 * Connection admission (src/flow/admission.ts): attempt rates per IP and per user, and open
 * connections per user. With Redis every gateway shares them; in memory they hold per process.
 * Each "gateway" here is an Admission with its own Redis connection, as two processes would have.
 */

// Never skip: without Redis these tests must fail. `npm test` (scripts/test.sh) starts Redis and sets REDIS_URL.
const REDIS_URL = serviceUrl('REDIS_URL', 'the admission contract tests');

const FILE_PREFIX = `bxtest-admission-${randomBytes(4).toString('hex')}`;
let n = 0;
let redis: Redis;
/** Admissions and Redis connections a test opened, closed after it. */
const opened: { admission: Admission; client?: Redis }[] = [];

const roomy: AdmissionLimits = { attemptsPerIpPerMinute: 1000, attemptsPerUserPerMinute: 1000, connectionsPerUser: 1000 };

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});

afterEach(async () => {
  for (const { admission, client } of opened.splice(0)) {
    await admission.close();
    await client?.quit();
  }
});

afterAll(async () => {
  if (!redis) return;
  await deleteKeys(redis, `${FILE_PREFIX}-*`);
  expect(await countKeys(FILE_PREFIX)).toBe(0);
  await redis.quit();
});

async function countKeys(prefix: string): Promise<number> {
  let cursor = '0';
  let total = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}-*`, 'COUNT', 1000);
    total += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return total;
}

/** A deployment: gateways created by `gateway()` share one key namespace in Redis. */
function redisDeployment(limits: AdmissionLimits): { prefix: string; gateway: () => { admission: Admission; client: Redis } } {
  const prefix = `${FILE_PREFIX}-${++n}`;
  return {
    prefix,
    gateway: () => {
      const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1, connectTimeout: 3000 });
      const admission = new Admission(limits, { client, prefix });
      opened.push({ admission, client });
      return { admission, client };
    },
  };
}

function memoryAdmission(limits: AdmissionLimits): Admission {
  const admission = new Admission(limits);
  opened.push({ admission });
  return admission;
}

/** Open connections of `user` per gateway id, as stored in Redis. */
async function storedCounts(prefix: string, user: string): Promise<Record<string, string>> {
  return redis.hgetall(redisKeys(prefix).userConnections(user));
}

/** Releases are fire-and-forget: a round trip on the same connection orders after them. */
async function settled(client: Redis): Promise<void> {
  await client.ping();
}

async function rejection(work: Promise<unknown>): Promise<ClientError> {
  try {
    await work;
  } catch (err) {
    expect(err).toBeInstanceOf(ClientError);
    return err as ClientError;
  }
  throw new Error('expected a rejection, got admitted');
}

// ------------------------------------------------------------------ one gateway: memory and Redis alike

const singleGateway: [string, (limits: AdmissionLimits) => { admission: Admission; settle: () => Promise<void> }][] = [
  ['in memory', (limits) => ({ admission: memoryAdmission(limits), settle: async () => undefined })],
  [
    'Redis',
    (limits) => {
      const { admission, client } = redisDeployment(limits).gateway();
      return { admission, settle: () => settled(client) };
    },
  ],
];

describe.each(singleGateway)('Admission on one gateway (%s)', (_name, make) => {
  it('admits up to connectionsPerUser open connections, then TOO_MANY_CONNECTIONS naming the scope and limit', async () => {
    const { admission } = make({ ...roomy, connectionsPerUser: 2 });
    await admission.admitUser('alice');
    await admission.admitUser('alice');
    const err = await rejection(admission.admitUser('alice'));
    expect(err.code).toBe('TOO_MANY_CONNECTIONS');
    expect(err.details).toEqual({ scope: 'user', limit: 2 });
    // Another user has slots of their own.
    await admission.admitUser('bob');
  });

  it('releasing frees a slot; releasing twice frees only one', async () => {
    const { admission, settle } = make({ ...roomy, connectionsPerUser: 2 });
    const first = await admission.admitUser('carol');
    await admission.admitUser('carol');
    first();
    first();
    await settle();
    await admission.admitUser('carol');
    expect((await rejection(admission.admitUser('carol'))).code).toBe('TOO_MANY_CONNECTIONS');
  });

  it('a refused connection takes no slot', async () => {
    const { admission, settle } = make({ ...roomy, connectionsPerUser: 1 });
    const only = await admission.admitUser('dave');
    for (let i = 0; i < 3; i++) expect((await rejection(admission.admitUser('dave'))).code).toBe('TOO_MANY_CONNECTIONS');
    only();
    await settle();
    await admission.admitUser('dave');
  });

  it('per-IP attempt rate: over it, RATE_LIMIT_EXCEEDED with scope ip; other IPs unaffected', async () => {
    const { admission } = make({ ...roomy, attemptsPerIpPerMinute: 3 });
    for (let i = 0; i < 3; i++) await admission.attemptFromIp('10.0.0.1');
    const err = await rejection(admission.attemptFromIp('10.0.0.1'));
    expect(err.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(err.details).toMatchObject({ scope: 'ip', limit: '3 connection attempts per minute' });
    expect(err.details.retry_after_ms).toBeGreaterThan(0);
    await admission.attemptFromIp('10.0.0.2');
  });

  it('per-user attempt rate counts attempts, not open connections: releasing does not refund it', async () => {
    const { admission, settle } = make({ ...roomy, attemptsPerUserPerMinute: 2 });
    (await admission.admitUser('erin'))();
    (await admission.admitUser('erin'))();
    await settle();
    const err = await rejection(admission.admitUser('erin'));
    expect(err.code).toBe('RATE_LIMIT_EXCEEDED');
    expect(err.details).toMatchObject({ scope: 'user', limit: '2 connection attempts per minute' });
    await admission.admitUser('frank');
  });
});

// ------------------------------------------------------------------ two gateways sharing Redis

describe('Admission across gateways sharing Redis', () => {
  it('connectionsPerUser holds across both gateways', async () => {
    const deployment = redisDeployment({ ...roomy, connectionsPerUser: 3 });
    const a = deployment.gateway();
    const b = deployment.gateway();
    await a.admission.admitUser('alice');
    await b.admission.admitUser('alice');
    await a.admission.admitUser('alice');
    expect((await rejection(b.admission.admitUser('alice'))).details).toEqual({ scope: 'user', limit: 3 });
    expect((await rejection(a.admission.admitUser('alice'))).code).toBe('TOO_MANY_CONNECTIONS');
    await settled(a.client);
    await settled(b.client);
    // The refusals were undone: 2 on one gateway, 1 on the other.
    expect(Object.values(await storedCounts(deployment.prefix, 'alice')).map(Number).sort()).toEqual([1, 2]);
  });

  it('a connection released on one gateway frees a slot on the other', async () => {
    const deployment = redisDeployment({ ...roomy, connectionsPerUser: 2 });
    const a = deployment.gateway();
    const b = deployment.gateway();
    const onA = await a.admission.admitUser('bob');
    await b.admission.admitUser('bob');
    expect((await rejection(b.admission.admitUser('bob'))).code).toBe('TOO_MANY_CONNECTIONS');
    onA();
    await settled(a.client);
    await b.admission.admitUser('bob');
    expect((await rejection(a.admission.admitUser('bob'))).code).toBe('TOO_MANY_CONNECTIONS');
  });

  it('a dead gateway (liveness key gone, connections never released) no longer counts, and its count is removed', async () => {
    const deployment = redisDeployment({ ...roomy, connectionsPerUser: 3 });
    const a = deployment.gateway();
    const b = deployment.gateway();
    await a.admission.admitUser('carol');
    await a.admission.admitUser('carol');
    await b.admission.admitUser('carol');
    expect((await rejection(b.admission.admitUser('carol'))).code).toBe('TOO_MANY_CONNECTIONS');
    expect(Object.keys(await storedCounts(deployment.prefix, 'carol'))).toHaveLength(2);
    // Gateway a dies: close() drops its liveness key, as its expiry would after a crash.
    await a.admission.close();
    await b.admission.admitUser('carol');
    await b.admission.admitUser('carol');
    expect((await rejection(b.admission.admitUser('carol'))).code).toBe('TOO_MANY_CONNECTIONS');
    await settled(b.client);
    // Only b's count is left: the dead gateway's entry was removed when it was found dead.
    expect(Object.values(await storedCounts(deployment.prefix, 'carol'))).toEqual(['3']);
  });

  it('per-IP attempt rate is shared: attempts on either gateway count against one budget', async () => {
    const deployment = redisDeployment({ ...roomy, attemptsPerIpPerMinute: 4 });
    const a = deployment.gateway();
    const b = deployment.gateway();
    await a.admission.attemptFromIp('192.0.2.7');
    await b.admission.attemptFromIp('192.0.2.7');
    await a.admission.attemptFromIp('192.0.2.7');
    await b.admission.attemptFromIp('192.0.2.7');
    for (const g of [a, b]) {
      const err = await rejection(g.admission.attemptFromIp('192.0.2.7'));
      expect(err.code).toBe('RATE_LIMIT_EXCEEDED');
      expect(err.details).toMatchObject({ scope: 'ip' });
    }
    await b.admission.attemptFromIp('192.0.2.8');
  });

  it('per-user attempt rate is shared across gateways', async () => {
    const deployment = redisDeployment({ ...roomy, attemptsPerUserPerMinute: 3 });
    const a = deployment.gateway();
    const b = deployment.gateway();
    (await a.admission.admitUser('dave'))();
    (await b.admission.admitUser('dave'))();
    (await a.admission.admitUser('dave'))();
    for (const g of [a, b]) {
      const err = await rejection(g.admission.admitUser('dave'));
      expect(err.code).toBe('RATE_LIMIT_EXCEEDED');
      expect(err.details).toMatchObject({ scope: 'user' });
    }
    await a.admission.admitUser('erin');
  });

  it('separate deployments (prefixes) do not share anything', async () => {
    const one = redisDeployment({ ...roomy, connectionsPerUser: 1, attemptsPerIpPerMinute: 1 }).gateway();
    const other = redisDeployment({ ...roomy, connectionsPerUser: 1, attemptsPerIpPerMinute: 1 }).gateway();
    await expect(one.admission.admitUser('frank')).resolves.toBeTypeOf('function');
    await expect(one.admission.attemptFromIp('198.51.100.1')).resolves.toBeUndefined();
    // The limits are live in `one`...
    await expect(one.admission.admitUser('frank')).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    await expect(one.admission.attemptFromIp('198.51.100.1')).rejects.toMatchObject({ code: 'RATE_LIMIT_EXCEEDED' });
    // ...and `other`, on another prefix, sees none of it.
    await expect(other.admission.admitUser('frank')).resolves.toBeTypeOf('function');
    await expect(other.admission.attemptFromIp('198.51.100.1')).resolves.toBeUndefined();
  });
});

describe('in-memory Admission is per process', () => {
  it('two in-memory gateways count separately (only Redis makes limits cluster-wide)', async () => {
    const a = memoryAdmission({ ...roomy, connectionsPerUser: 1, attemptsPerIpPerMinute: 1 });
    const b = memoryAdmission({ ...roomy, connectionsPerUser: 1, attemptsPerIpPerMinute: 1 });
    await expect(a.admitUser('gina')).resolves.toBeTypeOf('function');
    await expect(a.admitUser('gina')).rejects.toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    await expect(b.admitUser('gina')).resolves.toBeTypeOf('function');
    await expect(a.attemptFromIp('203.0.113.9')).resolves.toBeUndefined();
    await expect(b.attemptFromIp('203.0.113.9')).resolves.toBeUndefined();
  });
});
