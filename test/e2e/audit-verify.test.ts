import { generateKeyPairSync } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM_ALERTS_TOPIC } from '../../src/domain/topics.js';
import { entryHash } from '../../src/store/chain.js';
import { redisKeys } from '../../src/store/redis/keys.js';
import { checkpointSigner, rawPublicKey } from '../../src/store/checkpoint.js';
import type { HistoryEntry, SignedCheckpoint } from '../../src/store/topic-store.js';
import { openClient } from '../support/clients.js';
import { quote } from '../support/events.js';
import { runBondx } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * `bondx audit verify` against a real Redis: history changed behind the system's back is found at
 * exactly the changed seq, through Redis and through a gateway's replay API; a checkpoint signed with
 * another key is rejected; intact history passes.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the audit verify e2e test');
const PREFIX = `audit-${process.pid}-${Date.now()}`;
const signing = generateKeyPairSync('ed25519');
const SIGNING_PEM = signing.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
const VERIFY_ENV = { REDIS_URL, REDIS_PREFIX: PREFIX, AUDIT_PUBLIC_KEY: rawPublicKey(signing.publicKey), LOG_LEVEL: 'silent' };
const UNSET = ['KAFKA_BROKERS', 'AUDIT_SIGNING_KEY'];

let system: TestSystem;
let redis: Redis;

async function publish(isin: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await system.ingest.submit(quote(isin, 99 + i / 100, 99.5 + i / 100), 'test');
}

async function verify(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const run = runBondx(['audit', 'verify', ...args], VERIFY_ENV, UNSET);
  const code = await run.exited(30_000);
  return { code, out: run.stdout(), err: run.stderr() };
}

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX, AUDIT_SIGNING_KEY: SIGNING_PEM, AUDIT_CHECKPOINT_INTERVAL_MS: '600000' });
});

afterAll(async () => {
  await system?.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
});

describe('bondx audit verify (Redis)', () => {
  const ISIN = 'IN0020230085';
  const TOPIC = `prices.${ISIN}`;

  it('passes intact history and its checkpoint; finds a payload rewritten in Redis at exactly that seq, directly and through the replay API', async () => {
    await publish(ISIN, 12);
    await system.checkpointer?.flush();
    expect(await system.backends.store.auditCheckpoints(TOPIC)).toHaveLength(1);
    const intact = await verify([TOPIC]);
    expect(intact.out).toContain(`${TOPIC}: intact; 12 entries recomputed up to seq 12 from seq 1; checkpoints: 1 confirmed`);
    expect(intact.code).toBe(0);

    // Behind the system's back: entry 7's payload changed, its stored hash left as it was.
    const key = redisKeys(PREFIX).history(TOPIC);
    const stream = (await redis.xrange(key, '-', '+')) as [string, string[]][];
    const held = (await system.backends.store.readAfter(TOPIC, 0, 100)).entries;
    const [sixth, seventh] = [held[5], held[6]] as [HistoryEntry, HistoryEntry];
    const forged = { ...seventh, payload: { ...seventh.payload, bid: 1 } };
    const tx = redis.multi().del(key);
    for (const [id, fields] of stream) {
      const copy = [...fields];
      if (id === '7-0') copy[copy.indexOf('payload') + 1] = JSON.stringify(forged.payload);
      tx.xadd(key, id, ...copy);
    }
    await tx.exec();

    const expected = entryHash(sixth.hash, forged);
    const line = `${TOPIC}: BROKEN at seq 7 (epoch ${seventh.epoch}): expected hash ${expected}, found ${seventh.hash}`;
    const direct = await verify([TOPIC]);
    expect(direct.out.split('\n').filter((l) => l.includes('BROKEN'))).toEqual([line]);
    expect(direct.code).toBe(1);

    const auditor = system.token('auditor-1', 'auditor');
    const viaServer = await verify([TOPIC, '--server', system.server.url, '--token', auditor]);
    expect(viaServer.out.split('\n').filter((l) => l.includes('BROKEN'))).toEqual([line]);
    expect(viaServer.code).toBe(1);

    // From a seq after the rewrite, the rest of the chain is intact (seq 7 is the anchor then, not checked).
    const after = await verify([TOPIC, '--from-seq', '8']);
    expect(after.out).toContain(`${TOPIC}: intact; 5 entries recomputed up to seq 12 from the entry at seq 7`);
    expect(after.code).toBe(0);
  }, 90_000);

  it('rejects a checkpoint signed with another key (and still confirms the genuine one)', async () => {
    const topic = 'prices.IN0020240019';
    await publish('IN0020240019', 5);
    await system.checkpointer?.flush();
    const [genuine] = await system.backends.store.auditCheckpoints(topic);
    expect(genuine).toMatchObject({ topic, seq: 5 });
    const other = checkpointSigner(generateKeyPairSync('ed25519').privateKey).sign(genuine as SignedCheckpoint);
    await system.backends.store.appendAuditCheckpoint(other);
    const result = await verify([topic]);
    expect(result.out).toContain(`${topic}: CHECKPOINT seq 5 (epoch ${genuine?.epoch}, signed ${other.signed_at}) rejected: signature does not verify with the public key (signed by key ${other.key_id})`);
    expect(result.out).toContain(`${topic}: NOT intact (0 breaks, 1 failed checkpoint); 5 entries recomputed up to seq 5 from seq 1; checkpoints: 1 confirmed`);
    expect(result.code).toBe(1);
  }, 60_000);
});

describe('integrity subscribers', () => {
  it('get meta.hash on their deltas, equal to the history; others do not', async () => {
    const isin = 'IN0020192905';
    const topic = `prices.${isin}`;
    const plain = await openClient('websocket', system.server.url, 'market', isin, system.token('u1'));
    const integrity = await openClient('socketio', system.server.url, 'market', isin, system.token('u2'));
    try {
      expect(await integrity.request('subscribe', { topic, integrity: true })).toMatchObject({ type: 'ack' });
      await publish(isin, 3);
      const deltas = (c: typeof plain) => c.received.filter((e) => e.type === 'delta' && e.topic === topic);
      await waitFor(() => deltas(plain).length === 3 && deltas(integrity).length === 3, 10_000, 'deltas');
      const held = (await system.backends.store.readAfter(topic, 0, 10)).entries;
      expect(deltas(integrity).map((e) => e.meta.hash)).toEqual(held.map((e) => e.hash));
      expect(deltas(plain).every((e) => !('hash' in e.meta))).toBe(true);
    } finally {
      plain.close();
      integrity.close();
    }
  }, 30_000);
});

describe('system.alerts checkpoints', () => {
  it('signs the head of system.alerts, which other processes commit to, and verify confirms it', async () => {
    // Another process's alert: committed straight to the store, not by this system's projector.
    const at = new Date().toISOString();
    const payload = { kind: 'system_alert', name: 'test_alert', state: 'raised', value: 1, threshold: 0, message: 'test', since: at, instance: 'other', at };
    const committed = await system.backends.store.commit({ eventId: `alert-${PREFIX}`, eventTs: at, changes: [{ topic: SYSTEM_ALERTS_TOPIC, type: 'alert', payload, state: { active: [], updated_at: at } }] });
    expect(committed.applied).toBe(true);
    await system.checkpointer?.flush();
    const head = await system.backends.store.snapshot(SYSTEM_ALERTS_TOPIC);
    expect((await system.backends.store.auditCheckpoints(SYSTEM_ALERTS_TOPIC)).map(({ seq, epoch }) => ({ seq, epoch }))).toEqual([{ seq: head?.seq, epoch: head?.epoch }]);
    await system.checkpointer?.flush(); // unchanged: not signed again
    expect(await system.backends.store.auditCheckpoints(SYSTEM_ALERTS_TOPIC)).toHaveLength(1);
    const result = await verify([SYSTEM_ALERTS_TOPIC]);
    expect(result.code, result.err).toBe(0);
    expect(result.out).toContain('checkpoints: 1 confirmed');
    // A renewed epoch with no entry yet has nothing to sign (its head is hash(0) at the old epoch's seq).
    await system.backends.store.renewEpoch(SYSTEM_ALERTS_TOPIC, head?.epoch ?? '');
    await system.checkpointer?.flush();
    expect(await system.backends.store.auditCheckpoints(SYSTEM_ALERTS_TOPIC)).toHaveLength(1);
    const renewed = await verify([SYSTEM_ALERTS_TOPIC]);
    expect(renewed.code, renewed.out).toBe(0);
  }, 30_000);
});

describe('bondx audit verify with Kafka: checkpoints in the audit topic', () => {
  it('the projector appends them to <prefix>.audit and verify reads them from there', async () => {
    const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the audit verify e2e test');
    const run = `${PREFIX}-k`;
    const kafkaEnv = { REDIS_URL, REDIS_PREFIX: run, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX: run, KAFKA_GROUP_ID: run, KAFKA_PARTITIONS: '1' };
    const withKafka = await startTestSystem({ ...kafkaEnv, AUDIT_SIGNING_KEY: SIGNING_PEM, AUDIT_CHECKPOINT_INTERVAL_MS: '600000' });
    try {
      const topic = 'prices.IN0020230085';
      for (let i = 0; i < 4; i++) await withKafka.publisher?.publish([quote('IN0020230085', 99 + i / 100, 99.5)], 'test');
      await waitFor(async () => (await withKafka.backends.store.snapshot(topic))?.seq === 4, 20_000, 'the projected entries');
      await withKafka.checkpointer?.flush();
      expect(await withKafka.backends.store.auditCheckpoints(topic)).toEqual([]);
      const result = runBondx(['audit', 'verify', topic], { ...VERIFY_ENV, ...kafkaEnv }, ['AUDIT_SIGNING_KEY']);
      expect(await result.exited(60_000)).toBe(0);
      expect(result.stdout()).toContain(`${topic}: intact; 4 entries recomputed up to seq 4 from seq 1; checkpoints: 1 confirmed`);
    } finally {
      await withKafka.close();
      await deleteKeys(redis, `${run}:*`);
    }
  }, 90_000);
});
