import { randomBytes } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import { Redis } from 'ioredis';
import { Server as SocketIoServer } from 'socket.io';
import {
  clientGroup,
  fmtInt,
  fmtMs,
  fmtPct,
  machine,
  measureQuietStep,
  percentiles,
  quiesce,
  quoteEnvelope,
  runMain,
  startChild,
  stopChild,
  table,
  waitForQuietMachine,
  writeResults,
  type Child,
  type ClientGroup,
  type Percentiles,
} from './rig.js';
import { HOST, LatencyHistogram, quoteEvent, sleep, type ConnectArgs, type ConnectResult } from './shared.js';

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

const { values: opts } = parseArgs({
  options: {
    // Client count @ rates: the wide fan-out saturates the 2-core box (clients included) from ~250 ev/s,
    // so the higher rates run with a narrow fan-out, where the per-event cost (the adapter's) dominates.
    sets: { type: 'string', default: '200@100,300 20@500,2000' },
    warmup: { type: 'string', default: '1' },
    step: { type: 'string', default: '3' },
    drain: { type: 'string', default: '2' },
    retries: { type: 'string', default: '2' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log(`tsx bench/adapter-cost.ts [--sets "200@100,300 20@500,2000"] [--warmup 1] [--step 3] [--drain 2] [--retries 2]
  --sets        space-separated "<clients>@<rate>,<rate>": client count (split over the 2 nodes) and the ev/s steps run with it
  --retries     re-runs allowed for steps disturbed by other load on the machine
Needs REDIS_URL: bash scripts/services.sh up && eval "$(bash scripts/services.sh env)"`);
  process.exit(0);
}
const SETS = (opts.sets ?? '')
  .trim()
  .split(/\s+/)
  .map((part) => {
    const [clients, rates] = part.split('@');
    return { clients: Number(clients), rates: (rates ?? '').split(',').map(Number) };
  });
const TIMING = { warmupS: Number(opts.warmup), stepS: Number(opts.step), drainS: Number(opts.drain) };
const RETRIES = Number(opts.retries);
if (
  SETS.some((set) => !Number.isInteger(set.clients) || set.clients < 2 || set.rates.some((r) => !Number.isFinite(r) || r <= 0)) ||
  Object.values(TIMING).some((x) => !(x > 0)) ||
  !Number.isInteger(RETRIES) ||
  RETRIES < 0
) {
  console.error('--sets must look like "200@100,300 20@500,2000" (clients >= 2), --warmup/--step/--drain positive seconds, --retries an integer >= 0');
  process.exit(2);
}

const REDIS_URL = process.env.REDIS_URL;
if (!REDIS_URL) {
  console.error(
    [
      'adapter-cost needs a real Redis: REDIS_URL is not set.',
      'Start the local services (no Docker needed) and run again:',
      '  bash scripts/services.sh up && eval "$(bash scripts/services.sh env)" && node_modules/.bin/tsx bench/adapter-cost.ts',
    ].join('\n'),
  );
  process.exit(2);
}

const RUN = `bench-adapter-${randomBytes(4).toString('hex')}`;
const ROOM = 'prices.bench';
type Mode = 'cluster' | 'local';

const log = (line: string) => console.log(`[adapter-cost] ${line}`);

interface Node {
  name: string;
  io: SocketIoServer;
  http: HttpServer;
  redis: Redis;
  url: string;
}

async function startNode(name: string, redisUrl: string): Promise<Node> {
  const redis = new Redis(redisUrl);
  const http = createServer();
  const io = new SocketIoServer(http, {
    transports: ['websocket'],
    perMessageDeflate: false,
    serveClient: false,
    // As in src/runtime/gateway-server.ts, with names of our own.
    adapter: createAdapter(redis, { streamName: RUN, channelPrefix: RUN, onlyPlaintext: true }),
  });
  io.on('connection', (socket) => void socket.join(ROOM));
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, HOST, () => resolve());
  });
  return { name, io, http, redis, url: `http://${HOST}:${(http.address() as AddressInfo).port}` };
}

async function stopNode(node: Node): Promise<void> {
  await new Promise<void>((resolve) => node.io.close(() => resolve()));
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

interface Row {
  mode: Mode;
  rate: number;
  clients: number;
  deliveredMsgsPerSec: number;
  deliveredPct: number;
  all: Percentiles;
  nodeA: Percentiles;
  nodeB: Percentiles;
  serverCpuPct: number;
  clientCpuPct: number;
  otherCpuPct: number;
  redisCpuPct: number;
  xaddPerSec: number;
  xreadPerSec: number;
  /** Redis's own time in XADD + XREAD per second of the step (commandstats usec). */
  redisCmdMsPerSec: number;
  driverMaxBehind: number;
  noisy: boolean;
}

function pcts(json: { latency: Parameters<LatencyHistogram['merge']>[0] } | undefined): Percentiles {
  const h = new LatencyHistogram();
  if (json) h.merge(json.latency);
  return percentiles(h);
}

async function main(): Promise<void> {
  const t0 = Date.now();
  log(`2 nodes, ${SETS.map((set) => `${set.clients} clients at ${set.rates.join(',')} ev/s`).join('; ')}; ${TIMING.warmupS}+${TIMING.stepS} s per step; Redis ${REDIS_URL}, stream ${RUN}`);
  const idleBusy = await waitForQuietMachine(log);
  const admin = new Redis(REDIS_URL as string);
  const nodes: Node[] = [];
  const children: Child[] = [];
  try {
    nodes.push(await startNode('A', REDIS_URL as string), await startNode('B', REDIS_URL as string));
    // Let both adapters' XREAD loops start before anything is published.
    await sleep(500);
    const [a, b] = nodes as [Node, Node];
    children.push(startChild('clients@A', 'clients.ts'), startChild('clients@B', 'clients.ts'));
    const groups: ClientGroup[] = await Promise.all(children.map((c) => clientGroup(c)));
    const emitters: Record<Mode, (step: number, n: number) => void> = {
      cluster: (step, n) => {
        a.io.to(ROOM).emit('delta', quoteEnvelope(quoteEvent(step, n), n + 1));
      },
      local: (step, n) => {
        const envelope = quoteEnvelope(quoteEvent(step, n), n + 1);
        a.io.local.to(ROOM).emit('delta', envelope);
        b.io.local.to(ROOM).emit('delta', envelope);
      },
    };
    const budget = { retries: RETRIES, maxOtherPct: 40, log };

    const rows: Row[] = [];
    for (const set of SETS) {
      await Promise.all(children.map((c) => c.rpc.call('closeAll')));
      const counts = [Math.ceil(set.clients / 2), Math.floor(set.clients / 2)];
      const conns = await Promise.all(
        children.map((c, i) => c.rpc.call<ConnectResult>('connect', { url: (nodes[i] as Node).url, namespace: '/', token: null, count: counts[i] ?? 0, subscribe: null } satisfies ConnectArgs, 300_000)),
      );
      log(conns.map((c, i) => `node ${(nodes[i] as Node).name}: ${c.connected} clients in the room${c.failed ? ` (${c.failed} failed: ${c.firstError})` : ''}`).join('; '));
      if (conns.some((c) => c.connected === 0)) throw new Error('a node has no clients');
      for (const mode of ['cluster', 'local'] as const) {
        for (const rate of set.rates) {
          await quiesce(groups, 6_000);
          const r0 = await redisCounters(admin);
          const m = await measureQuietStep(groups, rate, TIMING, emitters[mode], budget);
          const r1 = await redisCounters(admin);
          const secs = m.elapsedMs / 1000;
          const d = (cmd: string) => ((r1.calls[cmd] ?? 0) - (r0.calls[cmd] ?? 0)) / secs;
          const row: Row = {
            mode,
            rate,
            clients: m.clients,
            deliveredMsgsPerSec: m.deliveredMsgsPerSec,
            deliveredPct: m.deliveredPct,
            all: percentiles(m.latency),
            nodeA: pcts(m.perGroup[0]),
            nodeB: pcts(m.perGroup[1]),
            serverCpuPct: m.serverCpuPct,
            clientCpuPct: m.clientCpuPct,
            otherCpuPct: m.otherCpuPct,
            redisCpuPct: (100 * (r1.cpuS - r0.cpuS)) / secs,
            xaddPerSec: d('xadd'),
            xreadPerSec: d('xread'),
            redisCmdMsPerSec: ((r1.usec.xadd ?? 0) - (r0.usec.xadd ?? 0) + (r1.usec.xread ?? 0) - (r0.usec.xread ?? 0)) / 1000 / secs,
            driverMaxBehind: m.driverMaxBehind,
            noisy: m.noisy,
          };
          rows.push(row);
          log(
            `${String(row.clients).padStart(3)} clients ${mode.padEnd(7)} ${String(rate).padStart(4)} ev/s: ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), p50/p95/p99 ${fmtMs(row.all.p50)}/${fmtMs(row.all.p95)}/${fmtMs(row.all.p99)} ms ` +
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
          fmtMs(r.all.p50),
          fmtMs(r.all.p95),
          fmtMs(r.all.p99),
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
    const file = writeResults('adapter-cost', { durationS: (Date.now() - t0) / 1000, machineBusyBeforePct: idleBusy, config: { sets: SETS, ...TIMING, retries: RETRIES, stream: RUN }, rows, markdown: md });
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
