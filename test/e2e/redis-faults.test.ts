import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import type { QuoteEvent } from '../../src/domain/events.js';
import { EventProducer } from '../../src/ingest/kafka/event-producer.js';
import type { Admin, Kafka } from 'kafkajs';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { connect, request } from '../support/clients.js';
import { startGateway, startProjector, stopAll, type GatewayProcess, type RoleProcess } from '../support/processes.js';
import { SeqChecker } from '../support/seq-checker.js';
import { dropRun, serviceUrl } from '../support/services.js';
import { TEST_SECRET, token } from '../support/system.js';
import { sleep } from '../support/waits.js';

/**
 * Redis faults under a running deployment: `bondx projector` and `bondx gateway` processes, socket.io
 * clients, and a real redis-server of this file's own (so killing it or its clients touches no other
 * test). The tests run in order on one deployment.
 * 1. Redis comes back OLDER than it was (issue 8 §2): saved (RDB) at one head, SIGKILLed further on,
 *    restarted from that snapshot. The projector must notice the store is behind its Kafka position and
 *    re-project what was lost, so every (epoch, seq) keeps naming the one event it named before.
 * 2. The gateway's pub/sub connection is killed while events flow: live notifications are lost, and the
 *    gateway's feeds must fill the gaps from history so every client stays contiguous.
 * 3. As 1, but Kafka no longer holds what Redis lost (records deleted, as retention would): the lost
 *    entries cannot be rebuilt, so every topic must get a new epoch and clients re-sync; no (epoch, seq)
 *    may name two events.
 */

const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the Redis restore e2e test');
const RUN = `restore-${randomBytes(4).toString('hex')}`;
/** The last one has no subscriber: no gateway feed watches it, only the projector can protect it. */
const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020192905', 'IN0020190032'];
const ALL_TOPICS = ISINS.map((isin) => `prices.${isin}`);
const TOPICS = ALL_TOPICS.slice(0, 3);
const UNWATCHED = ALL_TOPICS[3] as string;
const PER_PHASE = 60; // events per ISIN per phase

/** A redis-server of this test's own, with a data directory it can restart from. */
class OwnRedis {
  private proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'bondx-restore-'));
  constructor(readonly port: number) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    // Persistence only when told (SAVE): the dump is exactly the older state the test restores.
    this.proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(this.port), '--dir', this.dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined); // refused until the server listens: the loop retries
      try {
        await probe.connect();
        if ((await probe.ping()) === 'PONG') return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not answer (is Debian's redis-server installed?)`);
        await sleep(50);
      } finally {
        probe.disconnect();
      }
    }
  }
  kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }
  async dispose(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A socket.io client on /market following every topic: contiguity, and which event each (epoch, seq) named. */
class Follower {
  readonly checker = new SeqChecker();
  /** `${epoch}|${seq}` -> event_id, per topic, as this client was sent it. */
  readonly named = new Map<string, Map<string, string>>();
  private epochs = new Map<string, string>();
  constructor(readonly socket: Socket) {
    this.checker.attach(socket);
    socket.on('snapshot', (env: Envelope) => this.epochs.set(env.topic as string, String(env.meta.epoch)));
    socket.on('delta', (env: Envelope) => this.record(env));
    socket.on('batch', (env: Envelope) => {
      for (const inner of env.payload as unknown as Envelope[]) this.record(inner);
    });
  }
  private record(env: Envelope): void {
    const topic = env.topic as string;
    let named = this.named.get(topic);
    if (!named) this.named.set(topic, (named = new Map()));
    const key = `${this.epochs.get(topic)}|${env.seq}`;
    const previous = named.get(key);
    if (previous !== undefined && previous !== env.correlation_id) this.checker.violations.push(`${topic} ${key} named ${previous} and ${env.correlation_id}`);
    named.set(key, env.correlation_id as string);
  }
}

let redis: OwnRedis;
let store: RedisTopicStore;
let storeClient: Redis;
let producer: EventProducer;
let admin: Admin;
let kafka: Kafka;
let projector: RoleProcess;
let gateway: GatewayProcess;
const followers: Follower[] = [];
/** Per topic, the event_ids in the order produced: what the history must hold, seq k = k-th id. */
const upstream = new Map<string, string[]>(ALL_TOPICS.map((t) => [t, []]));
let n = 0;

async function produce(perIsin: number): Promise<void> {
  for (let i = 0; i < perIsin; i += 10) {
    const events: QuoteEvent[] = [];
    for (let j = 0; j < 10 && i + j < perIsin; j++) {
      for (const isin of ISINS) {
        const k = n++;
        const bid = Math.round((98 + (k % 200) / 100) * 1000) / 1000;
        const event: QuoteEvent = { event_id: `${RUN}-q${k}`, type: 'quote', ts: new Date().toISOString(), isin, bid, ask: bid + 0.05, bid_size: 1_000_000 + k, ask_size: 2_000_000 };
        upstream.get(`prices.${isin}`)?.push(event.event_id);
        events.push(event);
      }
    }
    await producer.send(events);
    await sleep(15);
  }
}

async function headsReach(target: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const heads = await Promise.all(ALL_TOPICS.map(async (t) => (await store.snapshot(t).catch(() => null))?.seq ?? 0));
    if (heads.every((h) => h >= target)) return;
    if (Date.now() > deadline) throw new Error(`heads ${heads.join('/')} did not reach ${target}\n${projector.describe(30)}`);
    await sleep(50);
  }
}

beforeAll(async () => {
  redis = new OwnRedis(await freePort());
  await redis.start();
  storeClient = new Redis(redis.url, { maxRetriesPerRequest: null });
  storeClient.on('error', () => undefined); // while Redis is down on purpose; ioredis reconnects
  store = new RedisTopicStore(storeClient, { prefix: RUN });
  const config = loadConfig({ KAFKA_BROKERS, KAFKA_TOPIC_PREFIX: RUN, KAFKA_PARTITIONS: '2', KAFKA_CLIENT_ID: `${RUN}-test`, LOG_LEVEL: 'silent' });
  kafka = createKafka(config, silentLogger);
  await ensureTopics(kafka, config);
  producer = new EventProducer(kafka, RUN);
  await producer.connect();
  admin = kafka.admin();
  await admin.connect();
  const common = { REDIS_URL: redis.url, REDIS_PREFIX: RUN, JWT_SECRET: TEST_SECRET, SIMULATOR: 'false' };
  projector = await startProjector({ ...common, KAFKA_BROKERS, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-projector`, KAFKA_PARTITIONS: '2' });
  gateway = await startGateway({ ...common, KAFKA_BROKERS: '' });
  for (let i = 0; i < 2; i++) {
    const socket = await connect(gateway.url, '/market', token(`viewer-${i}`));
    const follower = new Follower(socket);
    for (const topic of TOPICS) {
      const ack = await request(socket, 'subscribe', { topic, ...(i === 1 ? { batch_size: 20 } : {}) });
      expect(ack.type, JSON.stringify(ack)).toBe('ack');
    }
    followers.push(follower);
  }
}, 90_000);

afterAll(async () => {
  for (const f of followers) f.socket.close();
  await stopAll();
  await producer?.disconnect();
  await admin?.disconnect();
  storeClient?.disconnect();
  // The Redis is this file's own (disposed below); only the run's Kafka topics need dropping.
  if (kafka && redis) await dropRun(kafka, redis.url, RUN);
  await redis?.dispose();
}, 30_000);

describe('Redis restored from an older snapshot mid-stream', () => {
  it('re-projects what the store lost: every (epoch, seq) names one event, equal to the store, clients contiguous', async () => {
    await produce(PER_PHASE);
    await headsReach(PER_PHASE, 30_000);
    const epochsBefore = await Promise.all(ALL_TOPICS.map(async (t) => (await store.snapshot(t))?.epoch));
    await storeClient.save(); // the older state Redis will come back with

    await produce(PER_PHASE);
    await headsReach(2 * PER_PHASE, 30_000);
    await redis.kill();
    await redis.start(); // loads dump.rdb: every topic back at PER_PHASE, offsets and dedup window too
    expect((await store.snapshot(TOPICS[0] as string))?.seq).toBe(PER_PHASE);

    await produce(PER_PHASE);
    await headsReach(3 * PER_PHASE, 60_000);

    for (const topic of ALL_TOPICS) {
      // The history is the upstream order again: seq k is the k-th event of the topic, none lost or renumbered.
      const read = await store.readAfter(topic, 0, 10 * PER_PHASE);
      expect(read.entries.map((e) => e.event_id), topic).toEqual(upstream.get(topic));
      for (const follower of topic === UNWATCHED ? [] : followers) {
        await expect.poll(() => follower.checker.last.get(topic), { timeout: 10_000 }).toBe(3 * PER_PHASE);
        // What each client was sent under the store's epoch is exactly what the store holds.
        for (const entry of read.entries) {
          const sent = follower.named.get(topic)?.get(`${read.epoch}|${entry.seq}`);
          if (sent !== undefined) expect(sent, `${topic} seq ${entry.seq}`).toBe(entry.event_id);
        }
      }
    }
    // Rebuilt identically, so nothing had to be re-synced and the epochs stand.
    expect(await Promise.all(ALL_TOPICS.map(async (t) => (await store.snapshot(t))?.epoch))).toEqual(epochsBefore);
    for (const follower of followers) {
      expect(follower.checker.violations).toEqual([]);
      expect(follower.checker.resyncs).toBe(0);
    }
    expect(projector.logs().some((l) => String(l.msg).includes('re-seeking to the stored offset')), projector.describe(40)).toBe(true);
  }, 120_000);

  it('fills from history what the live feed lost when its pub/sub connection is killed mid-stream', async () => {
    const start = 3 * PER_PHASE;
    const killer = new Redis(redis.url);
    let kills = 0;
    const producing = produce(PER_PHASE);
    // Kill the gateway's subscriber connection again and again while events are committed.
    while (kills < 5) {
      await sleep(60);
      kills += Number(await killer.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    }
    await producing;
    killer.disconnect();
    await headsReach(start + PER_PHASE, 30_000);
    for (const topic of TOPICS) {
      for (const follower of followers) await expect.poll(() => follower.checker.last.get(topic), { timeout: 10_000 }).toBe(start + PER_PHASE);
    }
    for (const follower of followers) {
      expect(follower.checker.violations).toEqual([]);
      expect(follower.checker.resyncs, 'gaps were filled, not re-synced').toBe(0);
    }
    expect(kills).toBeGreaterThanOrEqual(5);
    expect(gateway.logs().length, gateway.describe(20)).toBeGreaterThan(0);
  }, 60_000);

  it('renews every epoch when Kafka no longer holds what Redis lost: clients re-sync, no (epoch, seq) names two events', async () => {
    const base = 4 * PER_PHASE;
    const epochsBefore = await Promise.all(ALL_TOPICS.map(async (t) => (await store.snapshot(t))?.epoch));
    const resyncsBefore = followers.map((f) => f.checker.resyncs);
    await storeClient.save();
    await produce(PER_PHASE);
    await headsReach(base + PER_PHASE, 30_000);
    await redis.kill();
    // What retention would do: the records Redis is about to lose are gone from Kafka too.
    const market = kafkaTopic(RUN, 'market');
    const offsets = await admin.fetchTopicOffsets(market);
    await admin.deleteTopicRecords({ topic: market, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
    await redis.start();
    await produce(PER_PHASE);
    await headsReach(base + PER_PHASE, 60_000);

    // Including the topic nobody watched: its old numbering is what a later resume would be served.
    const epochsAfter = await Promise.all(ALL_TOPICS.map(async (t) => (await store.snapshot(t))?.epoch));
    for (const [i, epoch] of epochsAfter.entries()) expect(epoch, ALL_TOPICS[i]).not.toBe(epochsBefore[i]);
    for (const topic of TOPICS) {
      const read = await store.readAfter(topic, 0, 10 * PER_PHASE);
      for (const follower of followers) {
        await expect.poll(() => follower.checker.epochs.get(topic), { timeout: 10_000 }).toBe(read.epoch);
        await expect.poll(() => follower.checker.last.get(topic), { timeout: 10_000 }).toBe(read.headSeq);
        for (const entry of read.entries) {
          const sent = follower.named.get(topic)?.get(`${read.epoch}|${entry.seq}`);
          if (sent !== undefined) expect(sent, `${topic} seq ${entry.seq}`).toBe(entry.event_id);
        }
      }
    }
    followers.forEach((follower, i) => {
      expect(follower.checker.violations).toEqual([]);
      expect(follower.checker.resyncs).toBeGreaterThanOrEqual((resyncsBefore[i] ?? 0) + TOPICS.length);
    });
    expect(projector.logs().some((l) => String(l.msg).includes('renewing every topic epoch')), projector.describe(40)).toBe(true);
  }, 120_000);
});
