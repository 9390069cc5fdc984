import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import type { OrderEvent, QuoteEvent } from '../../src/domain/events.js';
import { SYSTEM_ALERTS_TOPIC } from '../../src/domain/topics.js';
import type { DeadLetter } from '../../src/ingest/dead-letter.js';
import { EventProducer } from '../../src/ingest/kafka/event-producer.js';
import { createKafka, ensureTopics } from '../../src/ingest/kafka/kafka-client.js';
import { FAMILIES, kafkaTopic, sourceStream } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { RedisDeadLetterStore } from '../../src/ingest/redis-dead-letter.js';
import type { RedisClient } from '../../src/store/redis/client.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import type { HistoryEntry, Snapshot } from '../../src/store/topic-store.js';
import { connect, request } from '../support/clients.js';
import { startGateway, startProjector, stopAll, waitForExit, type GatewayProcess, type RoleProcess } from '../support/processes.js';
import { SeqChecker } from '../support/seq-checker.js';
import { deleteKeys, serviceUrl } from '../support/services.js';
import { TEST_SECRET, token } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * The streaming backbone end to end, as deployed: events on Kafka, `bondx projector` and
 * `bondx gateway` as separate OS processes meeting in Redis, socket.io clients on the gateways.
 * Crashes are real SIGKILLs. Everything in one run shares one Kafka topic prefix; the tests run in
 * order and build on each other (the state after one is the starting point of the next). It runs on a
 * single Redis node (backbone.test.ts) and on a Redis Cluster (backbone-cluster.test.ts, which adds
 * a failover mid-stream): the same processes, only their Redis environment differs.
 */

/** The Redis a run is deployed on. */
export interface BackboneRedis {
  /** Said in the suite's name. */
  label: string;
  /** The processes' Redis environment: REDIS_URL or REDIS_CLUSTER_NODES, the other one '' (inherited otherwise). */
  env: Record<string, string>;
  /** The test's own connection to it (for reading the store), closed by the suite. */
  connect(): Promise<RedisClient>;
}

/** What a test added by a variant (`backboneSuite`'s `more`) may use of the running backbone. */
export interface Backbone {
  readonly store: RedisTopicStore;
  readonly gateway: GatewayProcess;
  readonly projector: RoleProcess;
  subscribe(name: string, namespace: '/market' | '/trading', batchSize?: number): Subscriber;
  produceStream(total: number, opts?: { batch?: number; pauseMs?: number }): Promise<void>;
  waitForProjection(timeoutMs: number): Promise<void>;
  expectHistoriesMatchUpstream(): Promise<void>;
  heads(): Promise<Map<string, number>>;
  history(topic: string): Promise<HistoryEntry[]>;
  expectDeliveredExactlyOnce(client: Subscriber, topic: string, history: HistoryEntry[]): void;
  timings: string[];
}

// Never skip: without the services these tests must fail. `npm test` (scripts/test.sh) starts both.
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the e2e tests');
let target: BackboneRedis;

const RUN = `e2e-${randomBytes(4).toString('hex')}`;
/** Redis namespace of the main deployment, and of the from-scratch re-projection (test e). */
const PREFIX = RUN;
const FRESH_PREFIX = `${RUN}-fresh`;
const TOPIC_PREFIX = RUN;
const GROUP = `${RUN}-projector`;
const PARTITIONS = 3;

const ISINS = ['IN0020230085', 'IN0020240019', 'IN0020192905'];
/** Valid shape, wrong ISO 6166 check digit (…085 is right). */
const BAD_ISIN = 'IN0020230086';
const USER = 'e2e-trader';
const PRICE_TOPICS = ISINS.map((isin) => `prices.${isin}`);
const TRADING_TOPIC = `trading.${USER}`;

const projectorEnv = (overrides: Record<string, string> = {}): Record<string, string> => ({
  ...target.env,
  KAFKA_BROKERS,
  REDIS_PREFIX: PREFIX,
  KAFKA_TOPIC_PREFIX: TOPIC_PREFIX,
  KAFKA_GROUP_ID: GROUP,
  KAFKA_PARTITIONS: String(PARTITIONS),
  JWT_SECRET: TEST_SECRET,
  ...overrides,
});
/** Gateways only need Redis (KAFKA_BROKERS='' overrides the inherited one: no producer in the gateway). */
const gatewayEnv = (): Record<string, string> => ({ ...target.env, KAFKA_BROKERS: '', REDIS_PREFIX: PREFIX, JWT_SECRET: TEST_SECRET });

// ------------------------------------------------------------------------------------------ upstream

/**
 * Generates valid upstream events and remembers, per store topic, the event_ids in the order they
 * were produced: what every projection of the Kafka log must contain, in that order.
 */
class Upstream {
  readonly expected = new Map<string, string[]>();
  /** Dead-letter identities (event_id, or the raw text) of the invalid events produced, in order. */
  readonly invalid: string[] = [];
  /** The dead-letter reason each invalid event must get. */
  readonly reasons = new Map<string, RegExp>();
  private n = 0;
  private orders = 0;
  private lastFilled: OrderEvent | undefined;
  private pendingFill: OrderEvent | undefined;

  constructor(private readonly producer: EventProducer) {}

  /** `count` events: three quotes (one per ISIN) for every order event, orders accepted then filled. */
  next(count: number): (QuoteEvent | OrderEvent)[] {
    const out: (QuoteEvent | OrderEvent)[] = [];
    for (let i = 0; i < count; i++) {
      const k = this.n++;
      if (k % 4 === 3) out.push(this.orderEvent());
      else out.push(this.quote(ISINS[k % 3] as string, k));
    }
    return out;
  }

  async send(events: (QuoteEvent | OrderEvent)[]): Promise<void> {
    await this.producer.send(events);
  }

  /** Produces one quote with an invalid ISIN check digit (dead-lettered by validation). */
  async sendBadIsin(): Promise<void> {
    const event: QuoteEvent = { ...this.quote(ISINS[0] as string, this.n++, false), isin: BAD_ISIN };
    this.invalid.push(event.event_id);
    this.reasons.set(event.event_id, /invalid ISIN check digit/);
    await this.producer.send([event]);
  }

  /** Produces a line that is not JSON at all. */
  async sendNotJson(): Promise<void> {
    const text = `not json ${RUN} #${this.n++} {`;
    this.invalid.push(text);
    this.reasons.set(text, /not JSON/);
    await this.producer.sendRaw('market', [{ key: ISINS[0] as string, value: text }]);
  }

  /** Produces a valid event the projector rejects (fill of an order already filled). */
  async sendRejected(): Promise<void> {
    const filled = this.lastFilled;
    if (!filled) throw new Error('no filled order yet');
    const event: OrderEvent = { ...filled, event_id: `${RUN}-refill-${this.n++}`, ts: new Date().toISOString() };
    this.invalid.push(event.event_id);
    this.reasons.set(event.event_id, /already filled/);
    await this.producer.send([event]);
  }

  total(topic: string): number {
    return this.expected.get(topic)?.length ?? 0;
  }

  private quote(isin: string, k: number, track = true): QuoteEvent {
    const bid = Math.round((98 + (k % 200) / 100) * 1000) / 1000;
    const event: QuoteEvent = { event_id: `${RUN}-q${k}`, type: 'quote', ts: new Date().toISOString(), isin, bid, ask: bid + 0.05, bid_size: 1_000_000 + k, ask_size: 2_000_000 };
    if (track) this.track(`prices.${isin}`, event.event_id);
    return event;
  }

  private orderEvent(): OrderEvent {
    let event: OrderEvent;
    if (this.pendingFill) {
      event = { ...this.pendingFill, type: 'order.filled', event_id: `${RUN}-f${this.n}`, ts: new Date().toISOString(), filled_quantity: this.pendingFill.quantity };
      this.lastFilled = event;
      this.pendingFill = undefined;
    } else {
      const id = ++this.orders;
      event = { event_id: `${RUN}-a${this.n}`, type: 'order.accepted', ts: new Date().toISOString(), user_id: USER, order_id: `o${id}`, isin: ISINS[id % 3] as string, side: id % 2 ? 'buy' : 'sell', price: 99 + (id % 10) / 10, quantity: 1_000_000 * (1 + (id % 5)) };
      this.pendingFill = event;
    }
    this.track(TRADING_TOPIC, event.event_id);
    return event;
  }

  private track(topic: string, eventId: string): void {
    let ids = this.expected.get(topic);
    if (!ids) this.expected.set(topic, (ids = []));
    ids.push(eventId);
  }
}

/**
 * Produces `total` events in batches of `batch`, pausing `pauseMs` between batches (a steady stream
 * rather than one burst), with a bad-ISIN event after every `badEvery` events up to `badUntil`.
 */
async function produceStream(total: number, opts: { batch?: number; pauseMs?: number; badEvery?: number; badUntil?: number } = {}): Promise<void> {
  const batch = opts.batch ?? 20;
  let sent = 0;
  while (sent < total) {
    const n = Math.min(batch, total - sent);
    await upstream.send(upstream.next(n));
    const before = sent;
    sent += n;
    if (opts.badEvery && sent <= (opts.badUntil ?? total) && Math.floor(sent / opts.badEvery) > Math.floor(before / opts.badEvery)) await upstream.sendBadIsin();
    if (opts.pauseMs) await sleep(opts.pauseMs);
  }
}

// ------------------------------------------------------------------------------------------ clients

/**
 * A socket.io subscriber that can move between gateways: a SeqChecker follows its seqs across
 * sockets, and every delta/alert it receives (batched or not) is recorded per topic.
 */
export class Subscriber {
  readonly checker = new SeqChecker();
  readonly received = new Map<string, Envelope[]>();
  /** Seq of the first snapshot per topic (deliveries start after it). */
  readonly startSeq = new Map<string, number>();
  readonly errors: Envelope[] = [];
  readonly failures: string[] = [];
  socket: Socket | undefined;
  gateway = '';
  moves = 0;

  constructor(
    readonly name: string,
    readonly namespace: '/market' | '/trading',
    readonly sub: string,
    readonly topics: string[],
    readonly batchSize?: number,
  ) {}

  /** Connects to `gateway` and subscribes to every topic: fresh the first time, resuming after that. */
  async connectTo(gateway: GatewayProcess): Promise<void> {
    const socket = await connect(gateway.url, this.namespace, token(this.sub));
    this.checker.attach(socket);
    const record = (env: Envelope) => {
      const topic = env.topic as string;
      let list = this.received.get(topic);
      if (!list) this.received.set(topic, (list = []));
      list.push(env);
    };
    socket.on('delta', record);
    socket.on('alert', record);
    socket.on('batch', (env: Envelope) => (env.payload as unknown as Envelope[]).forEach(record));
    socket.on('snapshot', (env: Envelope) => {
      if (!this.startSeq.has(env.topic as string)) this.startSeq.set(env.topic as string, env.seq as number);
    });
    socket.on('error', (env: Envelope) => this.errors.push(env));
    this.socket = socket;
    this.gateway = gateway.url;
    const acks = await Promise.all(
      this.topics.map((topic) => request(socket, 'subscribe', { ...this.checker.resumeRequest(topic), ...(this.batchSize ? { batch_size: this.batchSize } : {}) })),
    );
    for (const ack of acks) if (ack.type !== 'ack') throw new Error(`${this.name}: subscribe refused: ${JSON.stringify(ack)}`);
  }

  /** When the current gateway drops the connection, reconnect to `next` and resume. */
  failOverTo(next: GatewayProcess): Promise<void> {
    const socket = this.socket;
    if (!socket) throw new Error('not connected');
    return new Promise((resolve) => {
      socket.once('disconnect', () => {
        this.moves++;
        this.connectTo(next).then(resolve, (err: unknown) => {
          this.failures.push(`${this.name}: fail-over failed: ${String(err)}`);
          resolve();
        });
      });
    });
  }

  last(topic: string): number | undefined {
    return this.checker.last.get(topic);
  }

  close(): void {
    this.socket?.close();
  }
}

/** Asserts the client got exactly the topic's history after its first snapshot, each entry once, as stored. */
function expectDeliveredExactlyOnce(client: Subscriber, topic: string, history: HistoryEntry[]): void {
  const start = client.startSeq.get(topic);
  expect(start, `${client.name}: no snapshot for ${topic}`).toBeDefined();
  const got = (client.received.get(topic) ?? []).map((e) => ({ seq: e.seq, event_id: e.correlation_id, payload: e.payload }));
  const want = history.filter((e) => e.seq > (start as number)).map((e) => ({ seq: e.seq, event_id: e.event_id, payload: e.payload }));
  expect(got.length, `${client.name} ${topic}: entries received`).toBe(want.length);
  expect(got, `${client.name} ${topic}: entries differ from the stored history`).toEqual(want);
}

// ------------------------------------------------------------------------------------------ state

let redis: RedisClient;
let store: RedisTopicStore;
let deadLetters: RedisDeadLetterStore;
let kafka: Kafka;
let admin: Admin;
let producer: EventProducer;
let upstream: Upstream;
let config: Config;
let projector: RoleProcess;
let gatewayA: GatewayProcess;
let gatewayB: GatewayProcess;
const subscribers: Subscriber[] = [];
const timings: string[] = [];

/** Topics projected from upstream events (`system.alerts` is written by each process's alert monitor). */
async function projectedTopics(s: RedisTopicStore) {
  return (await s.topics()).filter((t) => t.topic !== SYSTEM_ALERTS_TOPIC);
}

async function heads(s: RedisTopicStore = store): Promise<Map<string, number>> {
  return new Map((await projectedTopics(s)).map((t) => [t.topic, t.headSeq]));
}

/** Waits until every topic's head in `s` equals the number of events produced for it. */
async function waitForProjection(timeoutMs: number, s: RedisTopicStore = store, proc: RoleProcess = projector): Promise<void> {
  const want = new Map([...upstream.expected].map(([topic, ids]) => [topic, ids.length]));
  let have = new Map<string, number>();
  await waitFor(async () => {
      have = await heads(s);
      return [...want].every(([topic, n]) => have.get(topic) === n);
    }, timeoutMs, () => `the projection to reach every produced event\nwant ${JSON.stringify([...want])}\nhave ${JSON.stringify([...have])}\n${proc.describe()}`, 50);
}

async function history(topic: string, s: RedisTopicStore = store): Promise<HistoryEntry[]> {
  return (await s.readAfter(topic, 0, 1_000_000)).entries;
}

/** Asserts the stored history of every topic is exactly the produced events, in order, seqs 1..n. */
async function expectHistoriesMatchUpstream(s: RedisTopicStore = store): Promise<void> {
  for (const [topic, ids] of upstream.expected) {
    const entries = await history(topic, s);
    expect(entries.map((e) => e.seq), `${topic}: seqs`).toEqual(ids.map((_, i) => i + 1));
    expect(entries.map((e) => e.event_id), `${topic}: event ids in produced order`).toEqual(ids);
  }
  expect((await projectedTopics(s)).map((t) => t.topic).sort()).toEqual([...upstream.expected.keys()].sort());
}

/** Where each partition of the event topics resumes, from the store (the highest offset any entity holds). */
function resumeOffsets(): Promise<Map<string, string>> {
  return store.sourceOffsets(FAMILIES.flatMap((f) => Array.from({ length: PARTITIONS }, (_, p) => sourceStream(kafkaTopic(TOPIC_PREFIX, f), p))));
}

/** Committed offsets of `groupId` equal the high watermark on every partition: the group has read everything. */
async function groupCaughtUp(groupId: string): Promise<boolean> {
  const topics = FAMILIES.map((f) => kafkaTopic(TOPIC_PREFIX, f));
  const committed = await admin.fetchOffsets({ groupId, topics });
  for (const topic of topics) {
    const hw = await admin.fetchTopicOffsets(topic);
    const mine = committed.find((c) => c.topic === topic);
    for (const p of hw) {
      const c = mine?.partitions.find((x) => x.partition === p.partition);
      // An empty partition has nothing to commit.
      if (p.high === '0') continue;
      if (c?.offset !== p.high) return false;
    }
  }
  return true;
}

async function dlqTopicCount(): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(kafkaTopic(TOPIC_PREFIX, 'dlq'));
  return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

/** Everything a projection consists of, for before/after comparisons. */
async function dump(s: RedisTopicStore, dl: RedisDeadLetterStore, options: { withTimes: boolean }) {
  const topics = (await projectedTopics(s)).sort((a, b) => a.topic.localeCompare(b.topic));
  const out: Record<string, unknown> = {};
  for (const t of topics) {
    const snap = (await s.snapshot(t.topic)) as Snapshot;
    const entries = await history(t.topic, s);
    out[t.topic] = {
      head: t.headSeq,
      snapshot: options.withTimes ? snap : { seq: snap.seq, state: snap.state },
      history: entries.map((e) => (options.withTimes ? e : { seq: e.seq, type: e.type, event_ts: e.event_ts, event_id: e.event_id, payload: e.payload })),
      ...(options.withTimes ? { epoch: t.epoch, updatedAt: t.updatedAt } : {}),
    };
  }
  const letters = await dl.list(10_000);
  return {
    topics: out,
    deadLetterCount: await dl.count(),
    deadLetters: letters.map((d) => (options.withTimes ? d : { reason: d.reason, source: d.source, event: d.event })),
  };
}

function timed<T>(label: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  return work().finally(() => timings.push(`${label}: ${((Date.now() - started) / 1000).toFixed(1)} s`));
}

// ------------------------------------------------------------------------------------------ set-up

/** Registers the backbone's tests on `redis`; `more` adds a variant's own tests after them, on the same running backbone. */
export function backboneSuite(redisTarget: BackboneRedis, more?: (backbone: Backbone) => void): void {
  target = redisTarget;

  beforeAll(async () => {
    redis = await target.connect();
    store = new RedisTopicStore(redis, { prefix: PREFIX });
    deadLetters = new RedisDeadLetterStore(redis, { prefix: PREFIX });
    config = loadConfig({ KAFKA_BROKERS, KAFKA_TOPIC_PREFIX: TOPIC_PREFIX, KAFKA_PARTITIONS: String(PARTITIONS), KAFKA_CLIENT_ID: `${RUN}-test`, LOG_LEVEL: 'silent' });
    kafka = createKafka(config, silentLogger, '-test');
    admin = kafka.admin();
    await admin.connect();
    // Topics first, so the processes find them (the projector subscribes without auto-creation).
    await ensureTopics(kafka, config);
    producer = new EventProducer(kafka, TOPIC_PREFIX);
    await producer.connect();
    upstream = new Upstream(producer);
    // Start the three processes in parallel: each pays its own TypeScript load and Kafka/Redis connects.
    [projector, gatewayA, gatewayB] = await timed('start projector + 2 gateways', () => Promise.all([startProjector(projectorEnv()), startGateway(gatewayEnv()), startGateway(gatewayEnv())]));
  }, 60_000);

  afterAll(async () => {
    for (const s of subscribers) s.close();
    await stopAll('SIGTERM', 10_000);
    await producer?.disconnect().catch(() => undefined);
    if (admin) {
      const topics = [...FAMILIES, 'dlq' as const].map((f) => kafkaTopic(TOPIC_PREFIX, f));
      await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
      const groups = (await admin.listGroups().catch(() => ({ groups: [] }))).groups.map((g) => g.groupId).filter((g) => g.startsWith(RUN));
      if (groups.length > 0) await admin.deleteGroups(groups).catch(() => undefined);
      await admin.disconnect();
    }
    if (redis) {
      await deleteKeys(redis, `${PREFIX}:*`);
      await deleteKeys(redis, `${FRESH_PREFIX}:*`);
      await redis.quit();
    }
    console.log(`backbone e2e timings (${RUN}):\n  ${timings.join('\n  ')}`);
  }, 60_000);

  // ------------------------------------------------------------------------------------------ tests

  describe.sequential(`streaming backbone: Kafka -> projector process -> Redis (${target.label}) -> gateway processes`, () => {
    it('a. delivers every event to clients on both gateways, contiguous and identical', async () => {
      await timed('a. end to end', async () => {
        // On each gateway: a market client (plain), a market client (batched), a trading client.
        for (const [g, gateway] of [['A', gatewayA], ['B', gatewayB]] as const) {
          subscribers.push(
            new Subscriber(`market-${g}`, '/market', 'viewer', PRICE_TOPICS),
            new Subscriber(`market-batched-${g}`, '/market', 'viewer', PRICE_TOPICS, 20),
            new Subscriber(`trading-${g}`, '/trading', USER, [TRADING_TOPIC]),
          );
          await Promise.all(subscribers.slice(-3).map((s) => s.connectTo(gateway)));
        }

        // The gateways meet through the Socket.IO adapter on this Redis (a cluster too): each answers the other.
        const health = (await (await fetch(`${gatewayA.url}/api/v1/ws/health`)).json()) as { cluster: { gateways: number } };
        expect(health.cluster, 'both gateways in the cluster view').toMatchObject({ gateways: 2 });

        // Invalid events first in their partitions (replays start with them), then in the middle of
        // valid traffic: validation failures (bad ISIN check digit, not JSON) and a projector rejection.
        await upstream.sendBadIsin();
        await upstream.sendNotJson();
        await produceStream(400, { batch: 25, pauseMs: 5 });
        await upstream.sendBadIsin();
        await upstream.sendNotJson();
        await upstream.sendRejected();
        await produceStream(200, { batch: 25, pauseMs: 5 });

        await waitForProjection(30_000);
        await expectHistoriesMatchUpstream();
        const topicHeads = await heads();
        await waitFor(() => subscribers.every((s) => s.topics.every((t) => s.last(t) === topicHeads.get(t))), 15_000, () => `every client at the head of its topics\n${subscribers.map((s) => `${s.name}: ${s.topics.map((t) => `${t}=${s.last(t)}/${topicHeads.get(t)}`).join(' ')}`).join('\n')}`, 50);
        for (const s of subscribers) {
          expect(s.checker.violations, s.name).toEqual([]);
          expect(s.checker.resyncs, s.name).toBe(0);
          expect(s.errors, s.name).toEqual([]);
          for (const topic of s.topics) {
            expect(s.startSeq.get(topic), `${s.name} subscribed before the first event`).toBe(0);
            expectDeliveredExactlyOnce(s, topic, await history(topic));
          }
        }
        // Same payload sequence through both gateways (implied by the above; said explicitly).
        for (const [a, b] of [[0, 3], [1, 4], [2, 5]] as const) {
          for (const topic of (subscribers[a] as Subscriber).topics) {
            const seqPayloads = (s: Subscriber) => (s.received.get(topic) ?? []).map((e) => [e.seq, e.payload]);
            expect(seqPayloads(subscribers[a] as Subscriber)).toEqual(seqPayloads(subscribers[b] as Subscriber));
          }
        }
        expect(subscribers.reduce((n, s) => n + s.checker.batches, 0), 'batched clients got batch frames').toBeGreaterThan(0);
      });
    }, 60_000);

    it('b. a projector killed mid-stream (SIGKILL) and restarted loses and duplicates nothing', async () => {
      await timed('b. projector crash', async () => {
        const before = await heads();
        const base = [...before.values()].reduce((a, b) => a + b, 0);
        // A steady stream of 900 events while the projector is killed. Bad-ISIN events go in early on, and
        // the kill waits until they are all dead-lettered: dead-lettering is at-least-once by design (a kill
        // between the DLQ write and the offset commit re-delivers), and this test wants exactly-once, i.e.
        // that an already-consumed bad event replayed after the restart is not dead-lettered again.
        const invalidBefore = upstream.invalid.length;
        const phase1 = produceStream(600, { batch: 15, pauseMs: 10, badEvery: 50, badUntil: 150 });
        await waitFor(async () => upstream.invalid.length === invalidBefore + 3 && (await deadLetters.count()) === invalidBefore + 3 && [...(await heads()).values()].reduce((a, b) => a + b, 0) >= base + 250, 20_000, () => `the projector to be mid-stream, past the bad events\n${projector.describe()}`, 50);
        const killedAt = Date.now();
        await projector.kill('SIGKILL');
        timings.push(`b. projector SIGKILLed at ${new Date(killedAt).toISOString()}`);
        const exit = await waitForExit(projector);
        expect(exit.signal).toBe('SIGKILL');
        const atKill = [...(await heads()).values()].reduce((a, b) => a + b, 0);
        // Same group id: the restarted projector takes the partitions over once the dead member's
        // Kafka session expires, and resumes from the offsets stored in Redis with the projection.
        projector = await startProjector(projectorEnv());
        await phase1;
        await produceStream(300, { batch: 15, pauseMs: 10, badEvery: 100 });
        await waitForProjection(60_000);
        timings.push(`b. projector down -> all ${upstream.expected.size} topics caught up: ${((Date.now() - killedAt) / 1000).toFixed(1)} s (killed after ${atKill - base} of ~900 entries)`);

        await expectHistoriesMatchUpstream();
        const topicHeads = await heads();
        await waitFor(() => subscribers.every((s) => s.topics.every((t) => s.last(t) === topicHeads.get(t))), 15_000, 'every client at the head of its topics', 50);
        for (const s of subscribers) {
          expect(s.checker.violations, s.name).toEqual([]);
          expect(s.checker.resyncs, s.name).toBe(0);
          for (const topic of s.topics) expectDeliveredExactlyOnce(s, topic, await history(topic));
        }
        // Every invalid event dead-lettered exactly once, the restart notwithstanding.
        expect(await deadLetters.count()).toBe(upstream.invalid.length);
        for (const s of subscribers) s.close();
      });
    }, 90_000);

    it('c. clients of a gateway killed (SIGKILL) mid-stream resume on another gateway with every seq exactly once', async () => {
      await timed('c. gateway crash', async () => {
        // Fresh clients on A, subscribing to topics that exist: their snapshots carry the epoch to resume with.
        const clients = [
          new Subscriber('c-market-A', '/market', 'viewer', PRICE_TOPICS),
          new Subscriber('c-market-batched-A', '/market', 'viewer', PRICE_TOPICS, 10),
          new Subscriber('c-trading-A', '/trading', USER, [TRADING_TOPIC]),
        ];
        subscribers.push(...clients);
        await Promise.all(clients.map((c) => c.connectTo(gatewayA)));
        const moved = Promise.all(clients.map((c) => c.failOverTo(gatewayB)));

        const base = [...(await heads()).values()].reduce((a, b) => a + b, 0);
        const stream = produceStream(600, { batch: 10, pauseMs: 10 });
        await waitFor(() => clients.every((c) => c.checker.received >= 60), 20_000, 'events flowing through gateway A', 50);
        await gatewayA.kill('SIGKILL');
        const projectedAtKill = [...(await heads()).values()].reduce((a, b) => a + b, 0) - base;
        await moved;
        await stream;
        await waitForProjection(30_000);

        const topicHeads = await heads();
        await waitFor(() => clients.every((c) => c.topics.every((t) => c.last(t) === topicHeads.get(t))), 15_000, () => `every moved client at the head of its topics\n${clients.map((s) => `${s.name}: ${s.topics.map((t) => `${t}=${s.last(t)}/${topicHeads.get(t)}`).join(' ')} ${s.failures.join(' ')}`).join('\n')}`, 50);
        timings.push(`c. gateway A killed after ${projectedAtKill} of 600 entries; clients received ${clients.map((c) => c.checker.received).join('/')} entries`);
        for (const c of clients) {
          expect(c.failures, c.name).toEqual([]);
          expect(c.moves, `${c.name} moved to B`).toBe(1);
          expect(c.gateway).toBe(gatewayB.url);
          expect(c.checker.violations, c.name).toEqual([]);
          expect(c.checker.resyncs, `${c.name} resumed without re-sync`).toBe(0);
          expect(c.errors, c.name).toEqual([]);
          for (const topic of c.topics) expectDeliveredExactlyOnce(c, topic, await history(topic));
        }
        for (const c of clients) c.close();
      });
    }, 60_000);

    it('d. redelivered Kafka offsets change nothing (group offsets dropped, and a second group)', async () => {
      await timed('d. redelivery', async () => {
        await waitFor(() => groupCaughtUp(GROUP), 15_000, 'the projector group to commit everything', 50);
        const before = await dump(store, deadLetters, { withTimes: true });
        const offsetsBefore = await resumeOffsets();
        const dlqBefore = await dlqTopicCount();

        // 1. Stop the projector, drop its (now empty) group's committed offsets (a reset to the very
        //    beginning: the projector subscribes fromBeginning), start it again in the same group.
        await projector.kill('SIGTERM');
        expect((await waitForExit(projector)).code).toBe(0);
        await admin.deleteGroups([GROUP]);
        expect(await groupCaughtUp(GROUP)).toBe(false);
        // 2. At the same time, a projector in a new group on the same Redis: it reads the log from the start too.
        const otherGroup = `${RUN}-projector-2`;
        const [restarted, second] = await Promise.all([startProjector(projectorEnv()), startProjector(projectorEnv({ KAFKA_GROUP_ID: otherGroup }))]);
        projector = restarted;
        await timed('d. both groups re-read the log', () => waitFor(async () => (await groupCaughtUp(GROUP)) && (await groupCaughtUp(otherGroup)), 30_000, () => `both groups to have consumed the whole log\n${restarted.describe(20)}\n${second.describe(20)}`, 50));
        // Stragglers would show up within a moment of the commit.
        await sleep(300);

        expect(await dump(store, deadLetters, { withTimes: true })).toEqual(before);
        expect(await resumeOffsets()).toEqual(offsetsBefore);
        expect(await dlqTopicCount(), 'nothing re-published to the DLQ topic').toBe(dlqBefore);
        const resumed = restarted.logs().filter((l) => l.msg === 'resuming partition after stored offset');
        expect(resumed.length, 'restarted projector resumed from the offsets stored in Redis').toBeGreaterThan(0);

        // Only one projector per deployment: stop the second, then show the restarted one still projects.
        await second.kill('SIGTERM');
        await produceStream(40, { batch: 10 });
        await waitForProjection(20_000);
        await expectHistoriesMatchUpstream();
      });
    }, 60_000);

    it('invalid events end up in the dead-letter store and the DLQ topic, each exactly once across restarts', async () => {
      await timed('dead letters', async () => {
        const res = await fetch(`${gatewayB.url}/api/v1/dead-letters?limit=1000`, { headers: { authorization: `Bearer ${token('ops', 'operator')}` } });
        expect(res.status).toBe(200);
        const body = (await res.json()) as { count: number; dead_letters: DeadLetter[] };
        const identity = (event: unknown) => (typeof event === 'string' ? event : String((event as { event_id?: unknown }).event_id));
        expect(body.count).toBe(upstream.invalid.length);
        expect(body.dead_letters.map((d) => identity(d.event)).sort()).toEqual([...upstream.invalid].sort());
        for (const d of body.dead_letters) expect(d.reason, identity(d.event)).toMatch(upstream.reasons.get(identity(d.event)) as RegExp);
        for (const d of body.dead_letters) expect(d.source).toMatch(new RegExp(`^kafka:${TOPIC_PREFIX}\\.(market|trading)/\\d+@\\d+$`));

        // The DLQ topic: the same letters, once each, with reason and source in headers.
        const inTopic = await dlqTopicCount();
        const consumer = kafka.consumer({ groupId: `${RUN}-dlq-reader`, maxWaitTimeInMs: 50 });
        const seen: { id: string; reason: string; source: string; at: string }[] = [];
        const identityOf = (value: string) => {
          try {
            return identity(JSON.parse(value) as unknown);
          } catch {
            return value;
          }
        };
        await consumer.connect();
        try {
          await consumer.subscribe({ topics: [kafkaTopic(TOPIC_PREFIX, 'dlq')], fromBeginning: true });
          await consumer.run({
            eachMessage: async ({ message }) =>
              void seen.push({
                id: identityOf(message.value?.toString('utf8') ?? ''),
                reason: message.headers?.reason?.toString() ?? '',
                source: message.headers?.source?.toString() ?? '',
                at: message.headers?.at?.toString() ?? '',
              }),
          });
          await waitFor(() => seen.length >= inTopic, 20_000, 'the DLQ topic to be read', 50);
        } finally {
          await consumer.disconnect();
        }
        const detail = `DLQ topic messages:\n${seen.map((m) => JSON.stringify(m)).join('\n')}\n${timings.join('\n')}`;
        expect(seen.map((m) => m.id).sort(), detail).toEqual([...upstream.invalid].sort());
        for (const m of seen) expect(m.reason, detail).toMatch(upstream.reasons.get(m.id) ?? /^$/);
      });
    }, 60_000);

    it('e. a fresh projection of the whole Kafka log into a new Redis namespace equals the live one', async () => {
      await timed('e. fresh projection', async () => {
        const fresh = new RedisTopicStore(redis, { prefix: FRESH_PREFIX });
        const freshLetters = new RedisDeadLetterStore(redis, { prefix: FRESH_PREFIX });
        const freshGroup = `${RUN}-projector-fresh`;
        const replay = await startProjector(projectorEnv({ REDIS_PREFIX: FRESH_PREFIX, KAFKA_GROUP_ID: freshGroup }));
        await waitForProjection(40_000, fresh, replay);
        await waitFor(() => groupCaughtUp(freshGroup), 15_000, 'the fresh projector to consume the whole log', 50);
        await expectHistoriesMatchUpstream(fresh);
        // Entry for entry (seq, type, event id and time, payload) and snapshot for snapshot; commit times
        // and epochs differ by construction. Dead letters: same reasons, sources and events.
        const live = await dump(store, deadLetters, { withTimes: false });
        const replayed = await dump(fresh, freshLetters, { withTimes: false });
        expect(Object.keys(replayed.topics)).toEqual(Object.keys(live.topics));
        for (const topic of Object.keys(live.topics)) expect(replayed.topics[topic], topic).toEqual(live.topics[topic]);
        expect(replayed.deadLetterCount).toBe(live.deadLetterCount);
        // Across partitions there is no order: compare dead letters by source (topic/partition@offset).
        const bySource = (letters: { source: string }[]) => [...letters].sort((a, b) => a.source.localeCompare(b.source));
        expect(bySource(replayed.deadLetters)).toEqual(bySource(live.deadLetters));
        await replay.kill('SIGTERM');
      });
    }, 60_000);

    // Getters: the backbone is started in beforeAll, after the tests are registered.
    more?.({
      get store() {
        return store;
      },
      get gateway() {
        return gatewayB;
      },
      get projector() {
        return projector;
      },
      subscribe: (name, namespace, batchSize) => {
        const client = new Subscriber(name, namespace, namespace === '/market' ? 'viewer' : USER, namespace === '/market' ? PRICE_TOPICS : [TRADING_TOPIC], batchSize);
        subscribers.push(client);
        return client;
      },
      produceStream,
      waitForProjection: (timeoutMs) => waitForProjection(timeoutMs),
      expectHistoriesMatchUpstream: () => expectHistoriesMatchUpstream(),
      heads: () => heads(),
      history: (topic) => history(topic),
      expectDeliveredExactlyOnce,
      timings,
    });
  });
}
