/**
 * Replay throughput and server memory (issue 10, phase 1): fills one topic in Redis through the store's
 * own commit path, then replays all of it into a file twice — straight from Redis as `bondx replay`
 * does, and through a `bondx gateway` process's GET /api/v1/replay — reporting entries/s and the
 * gateway's RSS (sampled every 50 ms from /proc) before, at peak during, and after the stream. With
 * KAFKA_BROKERS: the replay checkpoints the projector consumer writes every 1,000 entries go to Kafka
 * for the filled topic, and the state at an instant in the middle and near the end of it is timed
 * (src/replay/state.ts), straight and through GET /api/v1/replay/state, and checked; then
 * --kafka-events events of one entity go to a fresh one-partition topic and its topic is rebuilt from
 * them into a file (src/replay/rebuild.ts: validation, reducers, hash chain, NDJSON).
 *   REDIS_URL=redis://127.0.0.1:6390 [KAFKA_BROKERS=127.0.0.1:9092] npx tsx bench/replay.ts [--entries 1000000] [--kafka-events 200000]
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isDeepStrictEqual } from 'node:util';
import { Command } from 'commander';
import { loadConfig } from '../src/config/config.js';
import { applyDelta, freshPrices, type PricesDelta } from '../src/domain/deltas/index.js';
import type { QuoteEvent } from '../src/domain/events.js';
import type { JsonObject } from '../src/domain/json.js';
import { replayLine } from '../src/gateway/envelope.js';
import { createKafka, createProducer, ensureTopics } from '../src/ingest/kafka/kafka-client.js';
import { checkpointsTopic, type ReplayCheckpoint } from '../src/ingest/kafka/checkpoints.js';
import { readPartition } from '../src/ingest/kafka/partition-reader.js';
import { kafkaTopic } from '../src/ingest/kafka/routing.js';
import { silentLogger } from '../src/observability/logger.js';
import { rebuildTopic } from '../src/replay/rebuild.js';
import { planReplay, replayEncoder, runReplay, writableSink } from '../src/replay/replay.js';
import { parseReplayRequest } from '../src/replay/request.js';
import { stateAt } from '../src/replay/state.js';
import { genesisHead } from '../src/store/chain.js';
import { RedisTopicStore } from '../src/store/redis/redis-store.js';
import { storedEntryOf, type StoredEntry } from '../src/store/stored-entry.js';
import { startGateway, stopAll } from '../test/support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../test/support/services.js';
import { TEST_SECRET, token } from '../test/support/system.js';

const opts = new Command()
  .option('--entries <n>', 'entries in the replayed topic', (v) => Number(v), 1_000_000)
  .option('--in-flight <n>', 'commits in flight while filling', (v) => Number(v), 256)
  .option('--kafka-events <n>', 'events produced to Kafka and rebuilt from it (needs KAFKA_BROKERS)', (v) => Number(v), 200_000)
  .parse()
  .opts<{ entries: number; inFlight: number; kafkaEvents: number }>();

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay benchmark');
const PREFIX = `bench-replay-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const FILL_START = Date.parse('2026-11-26T04:00:00.000Z');
/** Checkpoint interval, as REPLAY_CHECKPOINT_EVERY's default. */
const CHECKPOINT_EVERY = 1000;
const dir = mkdtempSync(join(tmpdir(), 'bondx-bench-replay-'));

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}

/** Entry i's payload (an l1 quote committed at FILL_START + i ms), and the reducers' state after it. */
function fillPayload(i: number): PricesDelta & JsonObject {
  const ts = new Date(FILL_START + i).toISOString();
  return { kind: 'l1', bid: 99 + (i % 1000) / 1000, ask: 99.6, bid_size: 5_000_000, ask_size: 5_000_000, bid_yield: 7.1, ask_yield: 7.09, mid: 99.3, spread: 0.1, ts };
}
const fillState = (i: number) => applyDelta(freshPrices(ISIN), fillPayload(i)) as unknown as JsonObject;

async function fill(store: RedisTopicStore, total: number): Promise<number> {
  const started = Date.now();
  let next = 1;
  const worker = async () => {
    while (next <= total) {
      const i = next++;
      const payload = fillPayload(i);
      await store.commit({ eventId: `bench-${PREFIX}-${i}`, eventTs: payload.ts, source: { stream: 'bench/0', offset: String(i), ts: payload.ts }, changes: [{ topic: TOPIC, type: 'delta', payload, state: fillState(i) }] });
    }
  };
  await Promise.all(Array.from({ length: opts.inFlight }, worker));
  return (total / (Date.now() - started)) * 1000;
}

async function main(): Promise<void> {
  const total = opts.entries;
  const store = new RedisTopicStore(REDIS_URL, { prefix: PREFIX, maxLen: total, dedupWindow: 1000 });
  const results: Record<string, unknown> = { date: new Date().toISOString(), entries: total, node: process.version, cpus: cpus().length };
  try {
    process.stderr.write(`filling ${total.toLocaleString('en')} entries…\n`);
    results.fill_per_s = Math.round(await fill(store, total));
    const kafkaConfig = process.env.KAFKA_BROKERS ? loadConfig({ KAFKA_BROKERS: process.env.KAFKA_BROKERS, KAFKA_TOPIC_PREFIX: PREFIX, KAFKA_PARTITIONS: '1', LOG_LEVEL: 'silent' }) : undefined;
    const kafka = kafkaConfig && createKafka(kafkaConfig, silentLogger, '-bench');
    if (kafka && kafkaConfig) {
      await ensureTopics(kafka, kafkaConfig);
      await writeCheckpoints(kafka, store, total);
      results.state_at = await timeStateAt((at) => stateAt(store, { kafka, prefix: PREFIX, groupPrefix: `${PREFIX}-state` }, TOPIC, at), total);
    }

    // 1. Straight from Redis into a file (what `bondx replay` does without --server).
    const direct = join(dir, 'direct.ndjson');
    let started = Date.now();
    const plan = await planReplay(store, parseReplayRequest({ topic: TOPIC }));
    const out = createWriteStream(direct);
    const end = await runReplay(store, plan, replayEncoder('ndjson', TOPIC, replayLine), writableSink(out));
    await new Promise<void>((resolve) => out.end(resolve));
    const directMs = Date.now() - started;
    if (end.count !== total) throw new Error(`direct replay wrote ${end.count} of ${total}`);
    results.direct = { entries_per_s: Math.round((total / directMs) * 1000), seconds: directMs / 1000, bytes: statSync(direct).size };

    // 2. Through a gateway process, its RSS sampled while it streams.
    const gateway = await startGateway({ REDIS_URL, REDIS_PREFIX: PREFIX, JWT_SECRET: TEST_SECRET, SIMULATOR: 'false', ...(kafka ? { KAFKA_BROKERS: process.env.KAFKA_BROKERS as string, KAFKA_TOPIC_PREFIX: PREFIX, KAFKA_GROUP_ID: `${PREFIX}-gw` } : {}) });
    const before = rssMb(gateway.pid);
    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(rssMb(gateway.pid)), 50);
    started = Date.now();
    const viaHttp = join(dir, 'http.ndjson');
    await new Promise<void>((resolve, reject) => {
      get(`${gateway.url}/api/v1/replay?topic=${TOPIC}`, { headers: { authorization: `Bearer ${token('bench', 'auditor')}` } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        pipeline(res, createWriteStream(viaHttp)).then(resolve, reject);
      }).on('error', reject);
    });
    const httpMs = Date.now() - started;
    clearInterval(sampler);
    const after = rssMb(gateway.pid);
    if (kafka) {
      results.state_at_http = await timeStateAt(async (at) => {
        const res = await fetch(`${gateway.url}/api/v1/replay/state?topic=${TOPIC}&at=${at}`, { headers: { authorization: `Bearer ${token('bench', 'auditor')}` } });
        if (res.status !== 200) throw new Error(`state at ${at}: HTTP ${res.status} ${await res.text()}`);
        const envelope = (await res.json()) as { seq: number; ts: string; payload: JsonObject };
        return { seq: envelope.seq, ts: envelope.ts, state: envelope.payload };
      }, total);
    }
    await gateway.kill();
    if (statSync(viaHttp).size !== statSync(direct).size) throw new Error('HTTP and direct replays differ in size');
    const quarter = samples.slice(0, Math.max(1, Math.floor(samples.length / 4)));
    results.http = {
      entries_per_s: Math.round((total / httpMs) * 1000),
      seconds: httpMs / 1000,
      rss_mb: { before: round(before), first_quarter_max: round(Math.max(...quarter)), peak: round(Math.max(...samples)), after: round(after), samples: samples.length },
    };
    const fmt = (n: number) => n.toLocaleString('en');
    const h = results.http as { entries_per_s: number; seconds: number; rss_mb: Record<string, number> };
    const d = results.direct as { entries_per_s: number; seconds: number; bytes: number };
    process.stdout.write(
      [
        `| ${fmt(total)} entries (${(d.bytes / 2 ** 20).toFixed(0)} MB NDJSON) | entries/s | seconds | gateway RSS before / peak / after |`,
        '|---|--:|--:|--:|',
        `| from Redis into a file (\`bondx replay\`) | ${fmt(d.entries_per_s)} | ${d.seconds.toFixed(1)} | — |`,
        `| through a gateway's \`GET /api/v1/replay\` into a file | ${fmt(h.entries_per_s)} | ${h.seconds.toFixed(1)} | ${h.rss_mb.before} / ${h.rss_mb.peak} / ${h.rss_mb.after} MB |`,
        `(filled at ${fmt(results.fill_per_s as number)} commits/s)`,
        '',
      ].join('\n'),
    );
    for (const [way, figures] of [['straight', results.state_at], ['GET /api/v1/replay/state', results.state_at_http]] as const) {
      if (figures) process.stdout.write(`state at an instant (${way}): ${Object.entries(figures as Record<string, number>).map(([at, ms]) => `${at} ${ms} ms`).join(', ')}\n`);
    }
    if (kafka) {
      results.kafka = await rebuildFromKafka(kafka, opts.kafkaEvents);
      const k = results.kafka as { entries_per_s: number; seconds: number; entries: number };
      process.stdout.write(`| ${fmt(k.entries)} entries rebuilt from Kafka into a file | ${fmt(k.entries_per_s)} | ${k.seconds.toFixed(1)} | — |\n`);
    }
    writeFileSync(join(import.meta.dirname, 'results', 'replay.json'), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await stopAll('SIGKILL');
    const redis = await connectRedis(REDIS_URL);
    await deleteKeys(redis, `${PREFIX}:*`);
    redis.disconnect();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The replay checkpoints of the filled topic, as the projector consumer writes them (src/ingest/kafka/
 * checkpoints.ts: every 1,000 entries the head and the state after it; the fill's events have no Kafka
 * record, so the offset is the fill's own source offset).
 */
async function writeCheckpoints(kafka: ReturnType<typeof createKafka>, store: RedisTopicStore, total: number): Promise<void> {
  const producer = createProducer(kafka, false);
  await producer.connect();
  try {
    const messages: { key: string; value: string }[] = [];
    for (let seq = CHECKPOINT_EVERY; seq <= total; seq += CHECKPOINT_EVERY) {
      const [entry] = (await store.readAfter(TOPIC, seq - 1, 1)).entries;
      if (entry?.seq !== seq) throw new Error(`entry ${seq} is not in Redis`);
      const checkpoint: ReplayCheckpoint = { topic: TOPIC, epoch: entry.epoch, seq, ts: entry.ts, hash: entry.hash, state: fillState(seq), partition: 0, offset: String(seq) };
      messages.push({ key: TOPIC, value: JSON.stringify(checkpoint) });
    }
    for (let i = 0; i < messages.length; i += 500) await producer.send({ topic: checkpointsTopic(PREFIX), messages: messages.slice(i, i + 500) });
  } finally {
    await producer.disconnect();
  }
}

/** Times the state at an instant in the middle of the filled topic and one near its end, checking each answer. */
async function timeStateAt(ask: (at: string) => Promise<{ seq: number; ts: string; state: JsonObject }>, total: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [name, seq] of [['middle', Math.floor(total / 2) + 7], ['end', total - 13]] as const) {
    const at = new Date(FILL_START + seq).toISOString();
    const started = performance.now();
    const got = await ask(at);
    out[`${name}_ms`] = round(performance.now() - started);
    if (got.seq !== seq || got.ts !== at || !isDeepStrictEqual(got.state, fillState(seq))) throw new Error(`state at ${at}: seq ${got.seq}, expected ${seq} and its state`);
  }
  return out;
}

/** Produces `total` quotes of one ISIN to a fresh one-partition topic, then times their rebuild into an NDJSON file. */
async function rebuildFromKafka(kafka: ReturnType<typeof createKafka>, total: number): Promise<{ entries: number; entries_per_s: number; seconds: number; produce_per_s: number }> {
  const producer = createProducer(kafka, false);
  await producer.connect();
  let started = Date.now();
  for (let i = 0; i < total; i += 5000) {
    const messages = Array.from({ length: Math.min(5000, total - i) }, (_, k) => ({ key: ISIN, value: JSON.stringify(benchQuote(ISIN, i + k)) }));
    await producer.send({ topic: kafkaTopic(PREFIX, 'market'), messages });
  }
  await producer.disconnect();
  const produce_per_s = Math.round((total / (Date.now() - started)) * 1000);
  process.stderr.write(`produced ${total.toLocaleString('en')} events to Kafka, rebuilding…\n`);
  started = Date.now();
  const out = createWriteStream(join(dir, 'kafka.ndjson'));
  const sink = writableSink(out);
  const encoder = replayEncoder('ndjson', TOPIC, replayLine);

  let page: StoredEntry[] = [];
  let count = 0;
  for await (const { entry } of rebuildTopic(TOPIC, readPartition(kafka, `${PREFIX}-bench`, kafkaTopic(PREFIX, 'market'), 0), { head: genesisHead(TOPIC, 'bench'), state: undefined })) {
    page.push(storedEntryOf(entry));
    if (page.length === 1000) {
      await sink.write(encoder.page(page));
      count += page.length;
      page = [];
    }
  }
  await sink.write(encoder.page(page));
  count += page.length;
  await new Promise<void>((resolve) => out.end(resolve));
  const ms = Date.now() - started;
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: (await admin.listTopics()).filter((t) => t.startsWith(`${PREFIX}.`)) });
  await admin.disconnect();
  if (count !== total) throw new Error(`rebuilt ${count} of ${total} entries`);
  return { entries: count, entries_per_s: Math.round((count / ms) * 1000), seconds: ms / 1000, produce_per_s };
}

function benchQuote(isin: string, n: number): QuoteEvent {
  return { event_id: `bench-${n}`, type: 'quote', ts: new Date().toISOString(), isin, bid: 99 + (n % 50) / 100, ask: 99.6 + (n % 50) / 100, bid_size: 5_000_000, ask_size: 5_000_000 };
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
