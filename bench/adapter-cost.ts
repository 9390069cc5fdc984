import { randomBytes } from 'node:crypto';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { serviceUrl } from '../test/support/services.js';
import { sleep } from '../test/support/waits.js';
import type { ConnectArgs } from './clients.js';
import { int, parseOptions, retriesOption, timingOf, timingOptions, usageError } from './lib/options.js';
import { fmtInt, fmtMs, fmtPct, machine, table, writeResults } from './lib/report.js';
import { runMain, startChild, stopChild, type Child } from './lib/rpc.js';
import { LatencyHistogram, percentiles, waitForQuietMachine, type Percentiles } from './lib/stats.js';
import { clientGroup, figures, localPublisher, measureQuietStep, quiesce, shares, type ClientGroup, type ConnectResult, type StepFigures, type StepStats } from './lib/steps.js';
import { benchQuote, quoteEnvelope, startBareServer, type BareServer } from './lib/system.js';

/**
 * `tsx bench/adapter-cost.ts`: what `@socket.io/redis-streams-adapter` costs on the delivery path.
 * Two plain Socket.IO servers (nodes A and B, two ports in this process), each with the Redis Streams
 * adapter on its own Redis connection, N socket.io-client connections split across them (one client
 * process per node) in one room. The same quote envelopes are emitted at rising rates
 *   - cluster: `io.to(room).emit` on A: A's clients directly (after the XADD round trip: the cluster
 *     adapter publishes first), B's through the Redis stream (XADD on A, XREAD on B);
 *   - local:   `io.local.to(room).emit` on A and on B: what our gateway does, each node broadcasting
 *     from its own feed (the feed's own Redis pub/sub read is not part of this measurement).
 * Latency = client receipt - emit (high-resolution clock). Redis: `INFO commandstats` / `INFO cpu` deltas.
 *
 * Needs REDIS_URL: bash scripts/services.sh up && eval "$(bash scripts/services.sh env)"
 */

/** `<clients>@<rate>,<rate>`: a client count (split over the 2 nodes) and the ev/s steps run with it. */
function clientSet(part: string): { clients: number; rates: number[] } {
  const [clients, rates] = part.split('@');
  return { clients: int(2)(clients ?? ''), rates: (rates ?? '').split(',').map(int(1)) };
}

const opts = parseOptions(
  'tsx bench/adapter-cost.ts',
  'What @socket.io/redis-streams-adapter costs on the delivery path: io.to(room).emit through the adapter vs io.local on 2 nodes.',
  {
    // The wide fan-out saturates the 2-core box (clients included) from ~250 ev/s, so the higher rates
    // run with a narrow fan-out, where the per-event cost (the adapter's) dominates.
    sets: { help: 'space-separated "<clients>@<rate>,<rate>" client sets', default: '200@100,300 20@500,2000', parse: (text: string) => text },
    ...timingOptions({ warmup: 1, step: 3, drain: 2 }),
    ...retriesOption(2),
  },
  'Needs REDIS_URL: bash scripts/services.sh up && eval "$(bash scripts/services.sh env)"',
);
const SETS = (() => {
  try {
    return opts.sets.trim().split(/\s+/).map(clientSet);
  } catch (err) {
    return usageError(`--sets must look like "200@100,300 20@500,2000" (clients >= 2): ${(err as Error).message}`);
  }
})();
const TIMING = timingOf(opts);

const RUN = `bench-adapter-${randomBytes(4).toString('hex')}`;
const ROOM = 'prices.bench';
type Mode = 'cluster' | 'local';

const log = (line: string) => console.log(`[adapter-cost] ${line}`);

interface Node extends BareServer {
  name: string;
  redis: Redis;
}

async function startNode(name: string, redisUrl: string): Promise<Node> {
  const redis = new Redis(redisUrl);
  // As in src/runtime/gateway-server.ts, with names of our own.
  const server = await startBareServer({ adapter: createAdapter(redis, { streamName: RUN, channelPrefix: RUN, onlyPlaintext: true }) });
  server.io.on('connection', (socket) => void socket.join(ROOM));
  return { ...server, name, redis };
}

async function stopNode(node: Node): Promise<void> {
  await node.close();
  node.redis.disconnect();
}

// ---------------------------------------------------------------- Redis INFO

interface RedisCounters {
  cpuS: number;
  calls: Record<string, number>;
  usec: Record<string, number>;
}

const COMMANDS = ['xadd', 'xread', 'publish'];

async function redisCounters(redis: Redis): Promise<RedisCounters> {
  const [cpu, stats] = await Promise.all([redis.info('cpu'), redis.info('commandstats')]);
  const field = (name: string) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(cpu)?.[1] ?? Number.NaN);
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  for (const cmd of COMMANDS) {
    const m = new RegExp(`^cmdstat_${cmd}:calls=(\\d+),usec=(\\d+)`, 'm').exec(stats);
    calls[cmd] = Number(m?.[1] ?? 0);
    usec[cmd] = Number(m?.[2] ?? 0);
  }
  return { cpuS: field('used_cpu_sys') + field('used_cpu_user'), calls, usec };
}

// ---------------------------------------------------------------- main

interface Row extends StepFigures {
  mode: Mode;
  rate: number;
  nodeA: Percentiles;
  nodeB: Percentiles;
  redisCpuPct: number;
  xaddPerSec: number;
  xreadPerSec: number;
  /** Redis's own time in XADD + XREAD per second of the step (commandstats usec). */
  redisCmdMsPerSec: number;
  driverMaxBehind: number;
  noisy: boolean;
}

const pcts = (stats: StepStats | undefined): Percentiles => percentiles(LatencyHistogram.of(...(stats ? [stats.latency] : [])));

async function main(): Promise<void> {
  const t0 = Date.now();
  const REDIS_URL = serviceUrl('REDIS_URL', 'the adapter-cost benchmark');
  log(`2 nodes, ${SETS.map((set) => `${set.clients} clients at ${set.rates.join(',')} ev/s`).join('; ')}; ${TIMING.warmupS}+${TIMING.stepS} s per step; Redis ${REDIS_URL}, stream ${RUN}`);
  const idleBusy = await waitForQuietMachine(log);
  const admin = new Redis(REDIS_URL);
  const nodes: Node[] = [];
  const children: Child[] = [];
  try {
    nodes.push(await startNode('A', REDIS_URL), await startNode('B', REDIS_URL));
    // Let both adapters' XREAD loops start before anything is published.
    await sleep(500);
    const [a, b] = nodes as [Node, Node];
    children.push(startChild('clients@A', 'clients.ts'), startChild('clients@B', 'clients.ts'));
    const groups: ClientGroup[] = await Promise.all(children.map((c) => clientGroup(c)));
    const publishers = {
      cluster: localPublisher((step, n) => {
        a.io.to(ROOM).emit('delta', quoteEnvelope(benchQuote(step, n), n + 1));
      }),
      local: localPublisher((step, n) => {
        const envelope = quoteEnvelope(benchQuote(step, n), n + 1);
        a.io.local.to(ROOM).emit('delta', envelope);
        b.io.local.to(ROOM).emit('delta', envelope);
      }),
    } satisfies Record<Mode, unknown>;
    const budget = { retries: opts.retries, maxOtherPct: 40, log };

    const rows: Row[] = [];
    for (const set of SETS) {
      await Promise.all(children.map((c) => c.rpc.call('closeAll')));
      const counts = shares(set.clients, 2);
      const conns = await Promise.all(
        children.map((c, i) => c.rpc.call<ConnectResult>('connect', { url: (nodes[i] as Node).url, namespace: '/', token: null, count: counts[i] ?? 0, subscribe: null } satisfies ConnectArgs, 300_000)),
      );
      log(conns.map((c, i) => `node ${(nodes[i] as Node).name}: ${c.connected} clients in the room${c.failed ? ` (${c.failed} failed: ${c.firstError})` : ''}`).join('; '));
      if (conns.some((c) => c.connected === 0)) throw new Error('a node has no clients');
      for (const mode of ['cluster', 'local'] as const) {
        for (const rate of set.rates) {
          await quiesce(groups, 6_000);
          const r0 = await redisCounters(admin);
          const m = await measureQuietStep(groups, rate, TIMING, publishers[mode], budget);
          const r1 = await redisCounters(admin);
          const secs = m.elapsedMs / 1000;
          const d = (cmd: string) => ((r1.calls[cmd] ?? 0) - (r0.calls[cmd] ?? 0)) / secs;
          const row: Row = {
            ...figures(m),
            mode,
            rate,
            nodeA: pcts(m.perGroup[0]),
            nodeB: pcts(m.perGroup[1]),
            redisCpuPct: (100 * (r1.cpuS - r0.cpuS)) / secs,
            xaddPerSec: d('xadd'),
            xreadPerSec: d('xread'),
            redisCmdMsPerSec: ((r1.usec.xadd ?? 0) - (r0.usec.xadd ?? 0) + (r1.usec.xread ?? 0) - (r0.usec.xread ?? 0)) / 1000 / secs,
            driverMaxBehind: m.driverMaxBehind,
            noisy: m.noisy,
          };
          rows.push(row);
          log(
            `${String(row.clients).padStart(3)} clients ${mode.padEnd(7)} ${String(rate).padStart(4)} ev/s: ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), p50/p95/p99 ${fmtMs(row.latency.p50)}/${fmtMs(row.latency.p95)}/${fmtMs(row.latency.p99)} ms ` +
              `(A p99 ${fmtMs(row.nodeA.p99)}, B p99 ${fmtMs(row.nodeB.p99)}), CPU servers ${fmtPct(row.serverCpuPct)} clients ${fmtPct(row.clientCpuPct)} redis ${fmtPct(row.redisCpuPct)} other ${fmtPct(row.otherCpuPct)}, ` +
              `XADD ${fmtInt(row.xaddPerSec)}/s XREAD ${fmtInt(row.xreadPerSec)}/s`,
          );
        }
      }
    }
    await quiesce(groups, 6_000);

    const env = machine();
    const out: string[] = [];
    out.push(`### Redis Streams adapter on the delivery path: socket.io clients split over 2 nodes (${env.cpus} cores, Node ${env.node}, Redis and everything on 127.0.0.1)`);
    out.push('');
    out.push(
      `**cluster** = \`io.to(room).emit\` on node A (B's half of the clients get it through the Redis stream); **local** = \`io.local.to(room).emit\` on both nodes (our gateway's path). ` +
        `${TIMING.warmupS} s warm-up + ${TIMING.stepS} s measured per step; latency = client receipt - emit. CPU is % of one core: servers = this process (both nodes and the driver); "other" = the rest of the machine except the client processes and Redis. XADD/XREAD per second from \`INFO commandstats\` (both nodes' adapters, heartbeats included).`,
    );
    out.push('');
    out.push(
      table(
        ['clients', 'mode', 'ev/s', 'delivered msg/s', 'delivered', 'p50 ms', 'p95 ms', 'p99 ms', 'p99 A / B ms', 'CPU servers / clients / other', 'Redis CPU', 'XADD/s', 'XREAD/s', 'Redis XADD+XREAD ms/s'],
        rows.map((r) => [
          fmtInt(r.clients),
          r.mode,
          fmtInt(r.rate),
          fmtInt(r.deliveredMsgsPerSec),
          `${fmtPct(r.deliveredPct, 2)}${r.noisy ? '*' : ''}`,
          fmtMs(r.latency.p50),
          fmtMs(r.latency.p95),
          fmtMs(r.latency.p99),
          `${fmtMs(r.nodeA.p99)} / ${fmtMs(r.nodeB.p99)}`,
          `${fmtPct(r.serverCpuPct)} / ${fmtPct(r.clientCpuPct)} / ${fmtPct(Math.max(0, r.otherCpuPct - r.redisCpuPct))}`,
          fmtPct(r.redisCpuPct, 1),
          fmtInt(r.xaddPerSec),
          fmtInt(r.xreadPerSec),
          r.redisCmdMsPerSec.toFixed(1),
        ]),
      ),
    );
    if (rows.some((r) => r.noisy)) out.push('', '\\* other processes on the machine used more than 40% of a core during that step (even after re-runs): treat it as noisy');
    const md = out.join('\n');
    console.log(`\n${md}\n`);
    const file = writeResults('adapter-cost', { durationS: (Date.now() - t0) / 1000, machineBusyBeforePct: idleBusy, config: { sets: SETS, ...TIMING, retries: opts.retries, stream: RUN }, rows, markdown: md });
    log(`results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    await Promise.all(children.map((c) => c.rpc.call('closeAll').catch(() => undefined)));
  } finally {
    await Promise.all(children.map((c) => stopChild(c)));
    await Promise.all(nodes.map((n) => stopNode(n)));
    const deleted = await admin.del(RUN).catch(() => 0);
    log(`cleaned up: stream key ${RUN} ${deleted ? 'deleted' : 'not found'}`);
    admin.disconnect();
  }
}

runMain(main);
