import { parseArgs } from 'node:util';
import { issueToken, jwtKeysFromConfig } from '../src/gateway/auth.js';
import { silentLogger } from '../src/observability/logger.js';
import { startSystem, type System } from '../src/runtime/system.js';
import {
  clientGroup,
  fmtInt,
  fmtMs,
  fmtPct,
  machine,
  measureQuietStep,
  percentiles,
  quiesce,
  runMain,
  startChild,
  stopChild,
  table,
  waitForQuietMachine,
  writeResults,
  type Percentiles,
} from './rig.js';
import { benchConfig, BENCH_ISIN, BENCH_TOPIC, hrNow, quoteEvent, type ConnectArgs, type ConnectResult } from './shared.js';
import type { ReleaseResult, WsConnectArgs } from './ws-clients.js';

/**
 * `tsx bench/slow-clients.ts`: fan-out with a share of stalled clients. The real system runs in this
 * process with a small WS_MAX_QUEUE_SIZE; N healthy socket.io clients (one child process) follow
 * `prices.{isin}` on /market; for the "stalled" steps, S more clients (another child) connect to the
 * plain-WebSocket API `/api/v1/ws/market/{isin}` and stop reading right after their subscribe ack
 * (Socket.IO's client can not stop reading). Per step: the healthy clients' delivery and latency,
 * and what flow control did to the stalled ones: paused (left the room, to be conflated) during the
 * step, the largest outbound queue, and, once they read again, who got a `meta.conflated` snapshot.
 */

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    stalled: { type: 'string', default: '10' },
    rates: { type: 'string', default: '100,200' },
    'max-queue': { type: 'string', default: '200' },
    warmup: { type: 'string', default: '1' },
    step: { type: 'string', default: '4' },
    drain: { type: 'string', default: '3' },
    retries: { type: 'string', default: '2' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log(`tsx bench/slow-clients.ts [--clients 200] [--stalled 10] [--rates 100,200] [--max-queue 200] [--warmup 1] [--step 4] [--drain 3] [--retries 2]
  --stalled P    stalled clients as a % of --clients (each rate runs with 0 and with P %)
  --max-queue    WS_MAX_QUEUE_SIZE of the server`);
  process.exit(0);
}
const CLIENTS = Number(opts.clients);
const STALLED = Math.round((CLIENTS * Number(opts.stalled)) / 100);
const RATES = (opts.rates ?? '').split(',').map(Number);
const MAX_QUEUE = Number(opts['max-queue']);
const TIMING = { warmupS: Number(opts.warmup), stepS: Number(opts.step), drainS: Number(opts.drain) };
const RETRIES = Number(opts.retries);
if (
  !Number.isInteger(CLIENTS) ||
  CLIENTS < 1 ||
  !(STALLED > 0) ||
  !Number.isInteger(MAX_QUEUE) ||
  MAX_QUEUE < 1 ||
  RATES.some((r) => !Number.isFinite(r) || r <= 0) ||
  Object.values(TIMING).some((x) => !(x > 0)) ||
  !Number.isInteger(RETRIES) ||
  RETRIES < 0
) {
  console.error('--clients and --max-queue must be positive integers, --stalled a % giving at least one client, --rates positive numbers, --warmup/--step/--drain positive seconds');
  process.exit(2);
}

const log = (line: string) => console.log(`[slow-clients] ${line}`);

/**
 * A stalled client first fills kernel buffers (the server's socket send buffer grows up to tcp_wmem's
 * max, 4 MB here) before anything queues in the server process, which is what WS_MAX_QUEUE_SIZE
 * counts: at the bench topic's ~340 B per delta that is minutes of stall. So stalled clients also
 * follow a filler topic (20-level book deltas, ~1 KB) that is pumped before each step until their
 * kernel buffers are full and frames start queueing; the step's own deltas then push them over the limit.
 */
const FILLER_ISIN = 'IN0020240019';
const FILLER_TOPIC = `prices.${FILLER_ISIN}`;
let fillerN = 0;

function fillerEvent(): Record<string, unknown> {
  const n = ++fillerN;
  const side = n % 2 === 0 ? 'bid' : 'ask';
  const base = side === 'bid' ? 99.5 : 99.6;
  const dir = side === 'bid' ? -1 : 1;
  return {
    event_id: `filler-${n}`,
    type: 'book',
    ts: new Date().toISOString(),
    isin: FILLER_ISIN,
    side,
    levels: Array.from({ length: 20 }, (_, i) => ({ price: Math.round((base + dir * i * 0.005) * 1000) / 1000, size: 1_000_000 * (1 + ((n + i) % 9)) })),
  };
}

/** Pumps filler until some /market queue is non-empty (kernel buffers full) or the cap; returns events and ms. */
async function prefill(system: System, maxMs = 15_000): Promise<{ events: number; ms: number; queue: number }> {
  const ingest = system.ingest;
  const gateway = system.server?.gateway;
  if (!ingest || !gateway) throw new Error('no system');
  const t0 = hrNow();
  let events = 0;
  let queue = 0;
  while (hrNow() - t0 < maxMs) {
    await Promise.all(Array.from({ length: 50 }, () => ingest.submit(fillerEvent(), 'bench')));
    events += 50;
    await new Promise((resolve) => setImmediate(resolve));
    queue = gateway.queueSizes().get('market') ?? 0;
    if (queue > 0) break;
  }
  return { events, ms: hrNow() - t0, queue };
}

/** Samples, every 50 ms, the largest /market outbound queue and how many subscribers the topic's rooms hold. */
class FlowProbe {
  maxQueue = 0;
  minSubscribers = Number.POSITIVE_INFINITY;
  /** Time (ms after start) when the first / the last stalled client had left the room (been paused). */
  firstPausedMs = Number.NaN;
  allPausedMs = Number.NaN;
  private readonly timer: NodeJS.Timeout;
  private readonly t0 = hrNow();

  constructor(
    private readonly system: System,
    private readonly expectedSubscribers: number,
    private readonly stalled: number,
  ) {
    this.timer = setInterval(() => this.sample(), 50);
  }

  /** Subscribers of the bench topic still in a room (paused ones have left it). */
  subscribers(): number {
    return this.system.server?.gateway.hub.stats().find((s) => s.topic === BENCH_TOPIC)?.subscribers ?? 0;
  }

  private sample(): void {
    const gateway = this.system.server?.gateway;
    if (!gateway) return;
    this.maxQueue = Math.max(this.maxQueue, gateway.queueSizes().get('market') ?? 0);
    const subs = this.subscribers();
    this.minSubscribers = Math.min(this.minSubscribers, subs);
    const paused = this.expectedSubscribers - subs;
    const at = hrNow() - this.t0;
    if (paused > 0 && Number.isNaN(this.firstPausedMs)) this.firstPausedMs = at;
    if (paused >= this.stalled && Number.isNaN(this.allPausedMs)) this.allPausedMs = at;
  }

  stop(): { pausedNow: number; maxPaused: number } {
    clearInterval(this.timer);
    this.sample();
    return { pausedNow: this.expectedSubscribers - this.subscribers(), maxPaused: this.expectedSubscribers - this.minSubscribers };
  }
}

async function droppedByReason(system: System): Promise<Record<string, number>> {
  const metric = system.metrics.registry.getSingleMetric('bondx_messages_dropped_total');
  const out: Record<string, number> = {};
  if (!metric) return out;
  for (const v of (await metric.get()).values) {
    const reason = String(v.labels.reason ?? 'unknown');
    out[reason] = (out[reason] ?? 0) + v.value;
  }
  return out;
}

interface Row {
  stalled: number;
  rate: number;
  healthy: number;
  deliveredMsgsPerSec: number;
  deliveredPct: number;
  latency: Percentiles;
  serverCpuPct: number;
  clientCpuPct: number;
  otherCpuPct: number;
  noisy: boolean;
  /** Largest /market outbound queue seen during the step (frames). */
  maxQueue: number;
  /** Stalled clients paused (out of the room, awaiting conflation) at the end of the step. */
  pausedAtEnd: number;
  firstPausedMs: number;
  allPausedMs: number;
  release: ReleaseResult | null;
  fill: { events: number; ms: number; queue: number } | null;
  /** bondx_messages_dropped_total increase over the step and the release, by reason. */
  dropped: Record<string, number>;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  log(`${CLIENTS} healthy socket.io clients, ${STALLED} stalled ws clients (${opts.stalled} %), rates ${RATES.join(',')} ev/s, WS_MAX_QUEUE_SIZE ${MAX_QUEUE}, ${TIMING.warmupS}+${TIMING.stepS} s per step`);
  const idleBusy = await waitForQuietMachine(log);
  const config = benchConfig(CLIENTS + STALLED + 100, { WS_MAX_QUEUE_SIZE: String(MAX_QUEUE) });
  const keys = jwtKeysFromConfig(config);
  const system = await startSystem(config, silentLogger, { projector: true, gateway: true, simulator: false }, keys);
  const { ingest, server } = system;
  if (!ingest || !server) throw new Error('needs the projector and gateway roles in this process');
  const healthyChild = startChild('healthy', 'clients.ts');
  const stalledChild = startChild('stalled', 'ws-clients.ts');
  try {
    await ingest.submit(quoteEvent(0, 0), 'bench');
    await ingest.submit(fillerEvent(), 'bench');
    const token = issueToken(keys, { sub: 'bench-trader', ttl: 3600 });
    const conn = await healthyChild.rpc.call<ConnectResult>('connect', { url: server.url, namespace: '/market', token, count: CLIENTS, subscribe: { topic: BENCH_TOPIC, batch_size: null } } satisfies ConnectArgs, 300_000);
    log(`${conn.connected} healthy clients subscribed in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
    if (conn.connected === 0) throw new Error(`no client connected: ${conn.firstError}`);
    const healthy = await clientGroup(healthyChild);
    const wsUrl = `${server.url.replace('http://', 'ws://')}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token)}`;
    let errors = 0;
    const emit = (step: number, n: number) => {
      ingest.submit(quoteEvent(step, n), 'bench').then(
        (o) => {
          if (o.status !== 'applied') errors++;
        },
        () => errors++,
      );
    };
    const budget = { retries: RETRIES, maxOtherPct: 40, log };

    const rows: Row[] = [];
    for (const rate of RATES) {
      for (const stalled of [0, STALLED]) {
        await quiesce([healthy]);
        let fill: { events: number; ms: number; queue: number } | null = null;
        if (stalled > 0) {
          const s = await stalledChild.rpc.call<ConnectResult>('connect', { url: wsUrl, count: stalled, topic: BENCH_TOPIC, extraTopics: [FILLER_TOPIC], stall: true } satisfies WsConnectArgs, 120_000);
          if (s.connected !== stalled) throw new Error(`stalled clients: ${s.connected} of ${stalled} connected (${s.firstError})`);
          fill = await prefill(system);
          log(`pre-filled the stalled clients' kernel buffers: ${fill.events} filler events in ${fmtInt(fill.ms)} ms (largest queue now ${fill.queue})`);
        }
        const dropped0 = await droppedByReason(system);
        const probe = new FlowProbe(system, conn.connected + stalled, stalled);
        const m = await measureQuietStep([healthy], rate, TIMING, emit, budget);
        const flow = probe.stop();
        // Stalled clients read again: paused ones get a conflated snapshot once their queue drains.
        const release = stalled > 0 ? await stalledChild.rpc.call<ReleaseResult>('release', { timeoutMs: 5_000 }) : null;
        if (stalled > 0) await stalledChild.rpc.call('closeAll');
        const dropped1 = await droppedByReason(system);
        const dropped: Record<string, number> = {};
        for (const [reason, v] of Object.entries(dropped1)) if (v - (dropped0[reason] ?? 0) > 0) dropped[reason] = v - (dropped0[reason] ?? 0);
        const row: Row = {
          stalled,
          rate,
          healthy: m.clients,
          deliveredMsgsPerSec: m.deliveredMsgsPerSec,
          deliveredPct: m.deliveredPct,
          latency: percentiles(m.latency),
          serverCpuPct: m.serverCpuPct,
          clientCpuPct: m.clientCpuPct,
          otherCpuPct: m.otherCpuPct,
          noisy: m.noisy,
          maxQueue: probe.maxQueue,
          pausedAtEnd: flow.pausedNow,
          firstPausedMs: probe.firstPausedMs,
          allPausedMs: probe.allPausedMs,
          release,
          fill,
          dropped,
        };
        rows.push(row);
        log(
          `${rate} ev/s, ${stalled} stalled: healthy ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), p50 ${fmtMs(row.latency.p50)} p99 ${fmtMs(row.latency.p99)} ms; ` +
            `max queue ${row.maxQueue}, paused at end ${row.pausedAtEnd}${stalled ? ` (first after ${fmtInt(row.firstPausedMs)} ms, all after ${fmtInt(row.allPausedMs)} ms)` : ''}` +
            (release
              ? `; on release: ${release.conflated} conflated (${fmtInt(release.skipped)} deltas skipped), closed ${JSON.stringify(release.closed)}, neither ${release.neither}, ${(release.bytesPerStalled / 2 ** 20).toFixed(1)} MB read per stalled client`
              : '') +
            `; dropped ${JSON.stringify(dropped)}; CPU server ${fmtPct(row.serverCpuPct)} clients ${fmtPct(row.clientCpuPct)} other ${fmtPct(row.otherCpuPct)}`,
        );
      }
    }
    if (errors > 0) log(`WARNING: ${errors} events not applied`);

    const env = machine();
    const out: string[] = [];
    out.push(`### Fan-out with stalled clients: ${CLIENTS} healthy socket.io clients + ${STALLED} stalled ws clients, WS_MAX_QUEUE_SIZE ${MAX_QUEUE} (${env.cpus} cores, Node ${env.node}, 127.0.0.1)`);
    out.push('');
    out.push(
      `Healthy = socket.io-client on /market subscribed to ${BENCH_TOPIC} (latency = receipt - ingest.submit, ${TIMING.warmupS} s warm-up + ${TIMING.stepS} s measured); stalled = \`ws\` clients on /api/v1/ws/market/${BENCH_ISIN} that stop reading after their subscribe ack, connected fresh for each step, their kernel buffers then pre-filled through a second topic only they follow (a stalled socket absorbs ~4 MB in kernel buffers before the server queues anything). ` +
        `Paused = stalled clients flow control took out of the room during the step (market data conflated; the time is from the step's start); conflated = those that received a \`meta.conflated\` snapshot once reading again. CPU is % of one core.`,
    );
    out.push('');
    out.push(
      table(
        ['ev/s', 'stalled', 'healthy delivered msg/s', 'delivered', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CPU server / clients / other', 'max queue', 'paused (first / all at)', 'conflated on release', 'deltas skipped'],
        rows.map((r) => [
          fmtInt(r.rate),
          `${r.stalled}`,
          fmtInt(r.deliveredMsgsPerSec),
          `${fmtPct(r.deliveredPct, 2)}${r.noisy ? '*' : ''}`,
          fmtMs(r.latency.p50),
          fmtMs(r.latency.p95),
          fmtMs(r.latency.p99),
          fmtMs(r.latency.max),
          `${fmtPct(r.serverCpuPct)} / ${fmtPct(r.clientCpuPct)} / ${fmtPct(r.otherCpuPct)}`,
          fmtInt(r.maxQueue),
          r.stalled === 0 ? '–' : `${r.pausedAtEnd} of ${r.stalled} (${fmtInt(r.firstPausedMs)} / ${fmtInt(r.allPausedMs)} ms)`,
          r.release ? `${r.release.conflated} of ${r.release.stalled}${Object.keys(r.release.closed).length ? `, closed ${JSON.stringify(r.release.closed)}` : ''}` : '–',
          r.release ? fmtInt(r.release.skipped) : '–',
        ]),
      ),
    );
    if (rows.some((r) => r.noisy)) out.push('', '\\* other processes on the machine used more than 40% of a core during that step (even after re-runs): treat it as noisy');
    const md = out.join('\n');
    console.log(`\n${md}\n`);
    const file = writeResults('slow-clients', {
      durationS: (Date.now() - t0) / 1000,
      machineBusyBeforePct: idleBusy,
      config: { clients: CLIENTS, stalled: STALLED, rates: RATES, maxQueue: MAX_QUEUE, ...TIMING, retries: RETRIES },
      rows,
      markdown: md,
    });
    log(`results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    await healthyChild.rpc.call('closeAll');
  } finally {
    await Promise.all([stopChild(healthyChild), stopChild(stalledChild)]);
    await system.close();
  }
}

runMain(main);
