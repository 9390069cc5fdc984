/**
 * Commits/s of the store on one Redis node vs a Redis Cluster (issue 14): the projector's own commit —
 * one event, its change chained onto the head it names (expectedHeads) and the entity's last applied
 * source offset (`after`), through commit.lua — from `--in-flight` committers at once, each the single
 * writer of its own entities (as projectors are of their partitions' entities); with `--run N`, N
 * consecutive events of one entity per call (commitRun: how the projector commits a stretch of a batch). Reports commits/s and
 * the p50/p99 latency of a commit, and this process's CPU (the committer hashes each entry: on a small
 * machine it may be the limit rather than Redis).
 *   REDIS_URL=redis://127.0.0.1:6390 REDIS_CLUSTER_NODES=127.0.0.1:7101,… npx tsx bench/commits.ts [--commits 20000] [--in-flight 1,64] [--run 1,16]
 * (BONDX_TEST_REDIS_CLUSTER_NODES, as `npm test` sets it, is taken when REDIS_CLUSTER_NODES is not.)
 */
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Cluster } from 'ioredis';
import { createRedisClient, type RedisClient, type RedisTarget } from '../src/store/redis/client.js';
import { RedisTopicStore } from '../src/store/redis/redis-store.js';
import type { ChainHead, CommitInput } from '../src/store/topic-store.js';
import { deleteKeys } from '../test/support/services.js';
import { int, list, parseOptions, usageError } from './lib/options.js';
import { fmtInt, fmtMs, fmtPct, table, writeResults } from './lib/report.js';
import { hrNow, LatencyHistogram, ownCpuMs, percentiles } from './lib/stats.js';

const opts = parseOptions('bench/commits.ts', 'store commits/s and latency, one Redis node vs a Redis Cluster', {
  commits: { help: 'commits per measured run', default: 20_000, parse: int(100) },
  inFlight: { help: 'committers at once (comma-separated: one run each)', default: [1, 64], parse: list(int(1)) },
  entities: { help: 'entities (users) committed to, spread over the committers', default: 512, parse: int(1) },
  run: { help: "events per store call (comma-separated: one run each): 1 = commit, N = commitRun of N consecutive events of one entity, as the projector commits a stretch of a Kafka batch", default: [1, 16], parse: list(int(1)) },
});

const targets: { name: string; target: RedisTarget }[] = [];
if (process.env.REDIS_URL) targets.push({ name: 'one node', target: { url: process.env.REDIS_URL } });
const clusterSeeds = process.env.REDIS_CLUSTER_NODES || process.env.BONDX_TEST_REDIS_CLUSTER_NODES;
if (clusterSeeds) targets.push({ name: 'cluster (3 masters)', target: { clusterNodes: clusterSeeds } });
if (targets.length === 0) usageError('set REDIS_URL and/or REDIS_CLUSTER_NODES (`eval "$(bash scripts/services.sh env)"`)');

interface Run {
  target: string;
  inFlight: number;
  /** Events per store call. */
  run: number;
  /** Events committed. */
  commits: number;
  seconds: number;
  commitsPerS: number;
  p50: number;
  p99: number;
  cpuPct: number;
  /** CPU the Redis server(s) used, % of one core (all masters together). */
  redisCpuPct: number;
  /** Commits per second of Redis CPU: what one Redis core could take if the committers kept up. */
  commitsPerRedisCpuS: number;
}

/** CPU seconds the deployment's Redis servers (the masters of a cluster) have used. */
async function redisCpuS(client: RedisClient): Promise<number> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const used = await Promise.all(nodes.map(async (node) => {
    const info = await node.info('cpu');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
    return field('used_cpu_sys') + field('used_cpu_user');
  }));
  return used.reduce((a, b) => a + b, 0);
}

/** `inFlight` single writers, committer i owning entities i, i + inFlight, …: `commits` events in all, `run` per store call. */
async function measure(client: RedisClient, name: string, inFlight: number, run: number): Promise<Run> {
  const prefix = `bench-commits-${randomBytes(4).toString('hex')}`;
  const store = new RedisTopicStore(client, { prefix });
  const latency = new LatencyHistogram();
  const heads = new Map<string, ChainHead | null>();
  /** Per topic (one entity each): the last offset of its committer's stream applied to it. */
  const applied = new Map<string, string>();
  let issued = 0;
  let events = 0;
  const committer = async (me: number) => {
    const mine = Array.from({ length: Math.max(1, Math.floor(opts.entities / inFlight)) }, (_, k) => `trading.bench-u${me + k * inFlight}`);
    const stream = `bench/${me}`;
    let offset = 0;
    for (let call = 0; issued < opts.commits; call++) {
      const topic = mine[call % mine.length] as string;
      const size = Math.min(run, opts.commits - issued);
      issued += size;
      // The committer's stream visits its entities in turn, `size` consecutive records each.
      const inputs: CommitInput[] = Array.from({ length: size }, (_, k) => {
        const i = offset + k;
        const ts = new Date(Date.parse('2026-12-02T06:00:00.000Z') + i).toISOString();
        const state = { order_id: `o${i}`, status: 'accepted', price: 99 + (i % 100) / 100, quantity: 1_000_000 };
        const after = k === 0 ? (applied.get(topic) ?? null) : String(i - 1);
        return {
          eventId: `${prefix}-${me}-${i}`,
          eventTs: ts,
          source: { stream, offset: String(i), after, ts },
          changes: [{ topic, type: 'delta', payload: { kind: 'order', ...state }, state: { orders: { [`o${i}`]: state } } }],
          expectedHeads: k === 0 ? new Map([[topic, heads.get(topic) ?? null]]) : new Map(),
        };
      });
      offset += size;
      const started = hrNow();
      const results = size === 1 ? [await store.commit(inputs[0] as CommitInput)] : (await store.commitRun(inputs)).results;
      latency.add(hrNow() - started);
      const last = results[results.length - 1];
      if (results.length !== size || !last?.applied) throw new Error(`run not applied: ${JSON.stringify(last)}`);
      const entry = last.entries[0];
      if (entry) heads.set(topic, { epoch: entry.epoch, seq: entry.seq, ts: entry.ts, hash: entry.hash });
      applied.set(topic, String(offset - 1));
      events += size;
    }
  };
  const cpuBefore = ownCpuMs();
  const redisBefore = await redisCpuS(client);
  const started = hrNow();
  await Promise.all(Array.from({ length: inFlight }, (_, me) => committer(me)));
  const seconds = (hrNow() - started) / 1000;
  const cpuPct = ((ownCpuMs() - cpuBefore) / (seconds * 1000)) * 100;
  const redisS = (await redisCpuS(client)) - redisBefore;
  await deleteKeys(client, `${prefix}:*`);
  const p = percentiles(latency);
  return { target: name, inFlight, run, commits: events, seconds, commitsPerS: events / seconds, p50: p.p50, p99: p.p99, cpuPct, redisCpuPct: (redisS / seconds) * 100, commitsPerRedisCpuS: events / redisS };
}

const runs: Run[] = [];
for (const { name, target } of targets) {
  const client = createRedisClient(target);
  await client.ping();
  for (const inFlight of opts.inFlight) {
    for (const size of opts.run) {
      const run = await measure(client, name, inFlight, size);
      runs.push(run);
      console.log(`${name}, ${inFlight} in flight, ${size} per call: ${fmtInt(run.commitsPerS)} events/s, p50 ${fmtMs(run.p50)} ms, p99 ${fmtMs(run.p99)} ms per call (bench CPU ${fmtPct(run.cpuPct)}, Redis CPU ${fmtPct(run.redisCpuPct)})`);
    }
  }
  await client.quit();
}

const load = loadavg().map((l) => l.toFixed(2)).join(' ');
console.log(`\nStore commits (${opts.commits} per run, ${opts.entities} entities; ${cpus().length} cores, load average ${load}):\n`);
console.log(
  table(
    ['target', 'in flight', 'events per call', 'events/s', 'p50 ms per call', 'p99 ms per call', 'bench CPU', 'Redis CPU', 'events per Redis CPU-s'],
    runs.map((r) => [r.target, String(r.inFlight), String(r.run), fmtInt(r.commitsPerS), fmtMs(r.p50), fmtMs(r.p99), fmtPct(r.cpuPct), fmtPct(r.redisCpuPct), fmtInt(r.commitsPerRedisCpuS)]),
  ),
);
console.log(`\n${writeResults('commits', { options: opts, loadavg: loadavg(), runs })}`);
