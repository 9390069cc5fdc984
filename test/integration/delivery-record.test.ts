import type { Redis } from 'ioredis';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyDelta, type DeltaPayload, type StateOf } from '../../src/domain/deltas/index.js';
import type { JsonObject } from '../../src/domain/json.js';
import { compileSchemaDir, describeErrors } from '../../src/domain/json-schema.js';
import type { ShownAnswer } from '../../src/gateway/delivery-audit.js';
import type { Envelope } from '../../src/protocol/messages.js';
import type { DeliveryRecord } from '../../src/store/deliveries.js';
import { connect, request } from '../support/clients.js';
import { quote } from '../support/events.js';
import { runBondx, type CliRun } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * The delivery record end to end, on a real Redis (no Kafka: the record goes to the user's Redis
 * stream), a real gateway and real Socket.IO clients: a user who subscribed, was conflated (background
 * mode: the pause / conflate path of a slow client), disconnected and resumed has delivery ranges that
 * cover exactly the seqs the client received, and `audit shown` at moments along the way is exactly the
 * state the client held then (tracked on the client with applyDelta). Over HTTP and the CLI.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the delivery record integration test');
const PREFIX = `deliveries-${process.pid}-${Date.now()}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const USER = `alice-${process.pid}`;
const CLI_ENV = { REDIS_URL, REDIS_PREFIX: PREFIX, LOG_LEVEL: 'silent' };

const SCHEMAS = compileSchemaDir(new URL('../../schemas/audit/', import.meta.url), { delivery: 'https://bondx.example/schemas/audit/delivery.json', shown: 'https://bondx.example/schemas/audit/shown.json' });

/** Fails with ajv's reason unless `value` is in the documented contract (schemas/audit). */
function checkSchema(name: keyof typeof SCHEMAS, value: unknown): void {
  const validate = SCHEMAS[name];
  if (!validate(value)) throw new Error(`not a ${name} of schemas/audit: ${describeErrors(validate.errors)}\n${JSON.stringify(value)}`);
}

let system: TestSystem;
let redis: Redis;
let quotes = 0;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX, AUDIT_DELIVERY_FLUSH_MS: '100' });
});

afterAll(async () => {
  await system?.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
});

async function publish(n: number, sys = system, isin = ISIN): Promise<void> {
  for (let i = 0; i < n; i++) {
    quotes++;
    const outcome = await sys.ingest.submit(quote(isin, 99 + (quotes % 50) / 100, 99.6 + (quotes % 50) / 100), 'test');
    if (outcome.status !== 'applied') throw new Error(`quote not applied: ${JSON.stringify(outcome)}`);
  }
}

const head = async (sys = system, topic = TOPIC) => (await sys.backends.store.topics()).find((t) => t.topic === topic)?.headSeq ?? 0;

/** What the user's screen holds: the state folded from what the client received, and every seq received. */
class Screen {
  state: JsonObject = {};
  seq = -1;
  epoch = '';
  readonly seqs = new Set<number>();
  /** `epoch:seq` of everything received: seqs of two epochs are other entries. */
  readonly received = new Set<string>();
  readonly envelopes: Envelope[] = [];

  constructor(readonly topic = TOPIC) {}

  watch(socket: Socket): void {
    socket.onAny((type: string, envelope: Envelope) => {
      for (const e of type === 'batch' ? (envelope.payload as unknown as Envelope[]) : [envelope]) this.take(e);
    });
  }

  private take(e: Envelope): void {
    if (e.topic !== this.topic || e.seq === null) return;
    if (e.type === 'snapshot') {
      this.state = e.payload as JsonObject;
      this.epoch = String(e.meta.epoch);
    } else if (e.type === 'delta') {
      expect(e.seq).toBe(this.seq + 1);
      // A snapshot taken before the topic's first entry has no epoch yet: its deltas say which.
      this.epoch = String(e.meta.epoch);
      this.state = applyDelta(this.state as StateOf<DeltaPayload>, e.payload as DeltaPayload) as unknown as JsonObject;
    } else return;
    this.envelopes.push(e);
    this.seq = e.seq;
    this.seqs.add(e.seq);
    this.received.add(`${this.epoch}:${e.seq}`);
  }
}

interface Moment {
  at: string;
  seq: number;
  state: JsonObject;
}

/** Now, with what the screen holds; the next commit is at least a millisecond later. */
async function moment(screen: Screen): Promise<Moment> {
  const m = { at: new Date().toISOString(), seq: screen.seq, state: structuredClone(screen.state) };
  await sleep(3);
  return m;
}

async function caughtUp(screen: Screen, sys = system): Promise<void> {
  const target = await head(sys, screen.topic);
  await waitFor(() => screen.seq === target, 10_000, () => `client at ${screen.seq}, head ${target}`);
}

async function get(path: string, token: string | undefined, sys = system): Promise<Response> {
  return fetch(`${sys.server.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
}

async function ranges(sys = system, topic = TOPIC): Promise<DeliveryRecord[]> {
  const res = await get(`/api/v1/audit/deliveries?user=${USER}&topic=${topic}`, sys.token('audit-1', 'auditor'), sys);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/x-ndjson');
  return (await res.text())
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const record = JSON.parse(line) as DeliveryRecord;
      checkSchema('delivery', record);
      return record;
    });
}

async function shown(at: string, sys = system): Promise<ShownAnswer> {
  const res = await get(`/api/v1/audit/shown?user=${USER}&topic=${TOPIC}&at=${at}`, sys.token('audit-1', 'auditor'), sys);
  expect(res.status).toBe(200);
  const answer = (await res.json()) as ShownAnswer;
  checkSchema('shown', answer);
  return answer;
}

const seqsOf = (records: DeliveryRecord[]) => new Set(records.flatMap((r) => Array.from({ length: r.to_seq - r.from_seq + 1 }, (_, i) => r.from_seq + i)));

describe('delivery record', () => {
  const screen = new Screen();
  const moments: Moment[] = [];
  let beforeAny: string;
  let all: DeliveryRecord[];

  it('subscribe, conflation, disconnect and resume: the ranges cover exactly the seqs received', async () => {
    await publish(5);
    beforeAny = (await moment(screen)).at;
    const first = await connect(system.server.url, '/market', system.token(USER));
    screen.watch(first);
    await request(first, 'subscribe', { topic: TOPIC });
    await caughtUp(screen);
    await publish(20);
    await caughtUp(screen);
    moments.push(await moment(screen));
    // Background mode: market data paused, then brought up to date with one conflated snapshot.
    await request(first, 'background_mode', { enabled: true });
    await publish(15);
    moments.push(await moment(screen));
    await request(first, 'background_mode', { enabled: false });
    await caughtUp(screen);
    expect(screen.envelopes.filter((e) => e.type === 'snapshot' && e.meta.conflated !== undefined)).toHaveLength(1);
    await publish(10);
    await caughtUp(screen);
    const { seq: lastSeq, epoch } = screen;
    first.close();
    await publish(10);
    moments.push(await moment(screen));
    const second = await connect(system.server.url, '/market', system.token(USER));
    screen.watch(second);
    const ack = await request(second, 'subscribe', { topic: TOPIC, resume_from_seq: lastSeq, epoch });
    expect(ack.payload).toMatchObject({ resumed_from: lastSeq, resync: false });
    await caughtUp(screen);
    await publish(10);
    await caughtUp(screen);
    moments.push(await moment(screen));
    second.close();

    // Closed ranges are written within a flush interval (100 ms here).
    await waitFor(async () => (await ranges()).some((r) => r.kind === 'live' && r.end === 'disconnect' && r.to_seq === screen.seq), 5000, 'the last live range, closed');
    all = await ranges();
    expect(seqsOf(all)).toEqual(screen.seqs);
    expect(all.map((r) => `${r.kind}:${r.end}`)).toEqual(['snapshot:done', 'live:pause', 'conflated:done', 'live:disconnect', 'resume:done', 'live:disconnect']);
    for (const r of all) expect(r).toMatchObject({ user: USER, topic: TOPIC, epoch, transport: 'socketio', stream: 'market' });
    expect(new Set(all.map((r) => r.conn)).size).toBe(2);
    expect(new Set(all.map((r) => r.gateway)).size).toBe(1);
  });

  it('audit shown at each moment is the state the client held then', async () => {
    for (const m of moments) {
      const answer = await shown(m.at);
      expect({ seq: answer.seq, state: answer.state, delivered: answer.delivered }).toEqual({ seq: m.seq, state: m.state, delivered: true });
    }
    // While paused, the server went on committing: the screen still held what it had before.
    expect((moments[1] as Moment).seq).toBeLessThan((moments[2] as Moment).seq - 10);
    const none = await shown(beforeAny);
    expect(none).toMatchObject({ delivered: false, seq: null, state: null, ranges: [] });
  });

  // Five `bondx` processes, started at once: each spends seconds compiling under tsx on a loaded box.
  it('the CLI answers the same, straight from Redis and through the gateway', async () => {
    const m = moments[1] as Moment;
    const server = ['--server', system.server.url, '--token', system.token('audit-1', 'auditor')];
    const direct = { env: CLI_ENV, unset: ['KAFKA_BROKERS'] };
    // Through a gateway (--server, --token): the same answers, no Redis needed.
    const remote = { env: { LOG_LEVEL: 'silent' }, unset: ['KAFKA_BROKERS', 'REDIS_URL'] };
    const [deliveries, run, viaServer, none, bad] = [
      { args: ['audit', 'deliveries', '--user', USER, '--topic', TOPIC], ...direct },
      { args: ['audit', 'shown', '--user', USER, '--topic', TOPIC, '--at', m.at], ...direct },
      { args: ['audit', 'deliveries', '--user', USER, '--topic', TOPIC, ...server], ...remote },
      { args: ['audit', 'shown', '--user', USER, '--topic', TOPIC, '--at', beforeAny, ...server], ...remote },
      { args: ['audit', 'shown', '--user', USER, '--topic', 'nope', '--at', beforeAny, ...server], ...remote },
    ].map(({ args, env, unset }) => runBondx(args, env, unset)) as [CliRun, CliRun, CliRun, CliRun, CliRun];
    const codes = await Promise.all([deliveries, run, viaServer, none, bad].map((cli) => cli.exited(90_000)));
    expect(codes).toEqual([0, 0, 0, 0, 2]);
    expect(deliveries.stdout().trim().split('\n').map((line) => JSON.parse(line) as DeliveryRecord)).toEqual(all);
    expect(JSON.parse(run.stdout())).toEqual(await shown(m.at));
    expect(run.stderr()).toContain(`had ${TOPIC} at seq ${m.seq}`);
    expect(viaServer.stdout().trim().split('\n').map((line) => JSON.parse(line) as DeliveryRecord)).toEqual(all);
    expect(none.stderr()).toContain(`had been sent nothing of ${TOPIC}`);
  }, 120_000);

  it('only auditors and operators may ask; bad requests are INVALID_MESSAGE with the reason', async () => {
    for (const path of [`/api/v1/audit/deliveries?user=${USER}`, `/api/v1/audit/shown?user=${USER}&topic=${TOPIC}&at=${beforeAny}`]) {
      expect((await get(path, undefined)).status).toBe(401);
      for (const role of [undefined, 'publisher']) {
        const res = await get(path, system.token('someone', role));
        expect(res.status).toBe(403);
        expect(await res.json()).toMatchObject({ code: 'FORBIDDEN' });
      }
      expect((await get(path, system.token('ops', 'operator'))).status).toBe(200);
    }
    const future = new Date(Date.now() + 3_600_000).toISOString();
    for (const path of [
      '/api/v1/audit/deliveries',
      `/api/v1/audit/deliveries?user=${'u'.repeat(129)}`,
      `/api/v1/audit/deliveries?user=${USER}&topic=nope`,
      `/api/v1/audit/deliveries?user=${USER}&since=yesterday`,
      `/api/v1/audit/deliveries?user=${USER}&since=2026-12-02T10:00:00Z&until=2026-12-02T09:00:00Z`,
      `/api/v1/audit/deliveries?user=${USER}&at=${beforeAny}`,
      `/api/v1/audit/shown?user=${USER}&topic=${TOPIC}`,
      `/api/v1/audit/shown?user=${USER}&at=${beforeAny}`,
      `/api/v1/audit/shown?user=${USER}&topic=${TOPIC}&at=${future}`,
    ]) {
      const res = await get(path, system.token('audit-1', 'auditor'));
      expect(res.status, path).toBe(400);
      const body = (await res.json()) as { code: string; details: { reason: string } };
      expect(body.code).toBe('INVALID_MESSAGE');
      expect(body.details.reason).toBeTruthy();
    }
  });
});

describe('delivery record across a history reset', () => {
  it("the live range ends with 'resync' and a resync range follows, in the new epoch", async () => {
    const isin = 'IN0020240019';
    const screen = new Screen(`prices.${isin}`);
    const socket = await connect(system.server.url, '/market', system.token(USER));
    screen.watch(socket);
    await request(socket, 'subscribe', { topic: screen.topic });
    await publish(5, system, isin);
    await caughtUp(screen);
    const before = screen.epoch;
    await system.backends.store.reset(screen.topic);
    await publish(3, system, isin);
    await waitFor(() => screen.epoch !== before, 10_000, 'the re-sync snapshot');
    await caughtUp(screen);
    // Live entries after the re-sync snapshot (which may already hold every entry committed so far).
    await publish(2, system, isin);
    await caughtUp(screen);
    socket.close();
    await waitFor(async () => (await ranges(system, screen.topic)).some((r) => r.end === 'disconnect'), 5000, 'the last range, closed');
    const all = await ranges(system, screen.topic);
    expect(all.map((r) => `${r.kind}:${r.end}`)).toEqual(['snapshot:done', 'live:resync', 'resync:done', 'live:disconnect']);
    expect(new Set(all.flatMap((r) => [...seqsOf([r])].map((seq) => `${r.epoch}:${seq}`)))).toEqual(screen.received);
  });
});

describe('delivery record in embedded mode (no Redis, no Kafka)', () => {
  it("is kept in the process's memory and answers the same questions", async () => {
    const embedded = await startTestSystem({ AUDIT_DELIVERY_FLUSH_MS: '100' });
    try {
      const screen = new Screen();
      const socket = await connect(embedded.server.url, '/market', embedded.token(USER));
      screen.watch(socket);
      await request(socket, 'subscribe', { topic: TOPIC });
      await publish(7, embedded);
      await caughtUp(screen, embedded);
      const m = await moment(screen);
      await publish(3, embedded);
      await caughtUp(screen, embedded);
      await waitFor(async () => (await ranges(embedded)).some((r) => r.kind === 'live' && r.to_seq === screen.seq), 5000, 'the live range, written');
      expect(seqsOf(await ranges(embedded))).toEqual(screen.seqs);
      expect(await shown(m.at, embedded)).toMatchObject({ delivered: true, seq: m.seq, state: m.state });
      socket.close();
    } finally {
      await embedded.close();
    }
  });
});
