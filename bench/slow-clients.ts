import type { Socket as IoSocket } from 'socket.io';
import { book, ladder } from '../test/support/events.js';
import { startTestSystem, type TestSystem } from '../test/support/system.js';
import { sleep } from '../test/support/waits.js';
import type { ConnectArgs } from './clients.js';
import { int, list, oneOf, parseOptions, positive, retriesOption, timingOf, timingOptions, usageError } from './lib/options.js';
import { fmtInt, fmtMs, fmtPct, machine, table, writeResults } from './lib/report.js';
import { runMain, startChild, stopChild } from './lib/rpc.js';
import { fullGc, hrNow, waitForQuietMachine } from './lib/stats.js';
import { clientGroup, figures, localPublisher, measureQuietStep, quiesce, type ClientGroup, type ConnectResult, type Publisher, type StepFigures } from './lib/steps.js';
import { BENCH_ISIN, benchQuote, BENCH_TOPIC, quoteEnvelope, startBareServer, submitter, type BareServer as BareSocketIo } from './lib/system.js';
import type { BareStalledArgs, ReleaseResult, WsConnectArgs } from './ws-clients.js';

/**
 * `tsx bench/slow-clients.ts`: fan-out with a share of stalled clients. The real system runs in this
 * process with a small WS_MAX_QUEUE_SIZE; N healthy socket.io clients (one child process) follow
 * `prices.{isin}` on /market; for the "stalled" steps, S more clients (another child) connect to the
 * plain-WebSocket API `/api/v1/ws/market/{isin}` and stop reading right after their subscribe ack
 * (Socket.IO's client can not stop reading). Per step: the healthy clients' delivery and latency,
 * and what flow control did to the stalled ones: paused (left the room, to be conflated) during the
 * step, the largest outbound queue, and, once they read again, who got a `meta.conflated` snapshot.
 *
 * The `bare` variant repeats the same steps against a plain Socket.IO server in this process
 * (`io.emit('delta', envelope)`, websocket transport, perMessageDeflate off): the same N healthy
 * socket.io clients, and S stalled raw Engine.IO clients (`ws`, connect to `/`, then stop reading).
 * Both variants report this process's RSS growth: bare Socket.IO buffers for stalled clients without limit.
 */

type Variant = 'ours' | 'bare';
const opts = parseOptions('tsx bench/slow-clients.ts', 'Fan-out with a share of stalled clients: our flow control (pause, conflate) vs a bare Socket.IO server.', {
  clients: { help: 'healthy socket.io clients', default: 200, parse: int(1) },
  stalled: { help: 'stalled clients as a % of --clients (each rate runs with 0 and with this %)', default: 10, parse: positive },
  rates: { help: 'events/s steps', default: [100, 200], parse: list(positive) },
  maxQueue: { help: 'WS_MAX_QUEUE_SIZE of the server', default: 200, parse: int(1) },
  ...timingOptions({ warmup: 1, step: 4, drain: 3 }),
  ...retriesOption(2),
  variants: { help: 'ours (our gateway) and/or bare (plain Socket.IO server, same process), in that order', default: ['ours', 'bare'] as Variant[], parse: list(oneOf<Variant>('ours', 'bare')) },
});
const CLIENTS = opts.clients;
const STALLED = Math.round((CLIENTS * opts.stalled) / 100);
if (STALLED < 1) usageError('--stalled must give at least one stalled client');
const RATES = opts.rates;
const MAX_QUEUE = opts.maxQueue;
const TIMING = timingOf(opts);
const VARIANTS = opts.variants;
/** Bare Socket.IO's pingTimeout: stalled clients stop answering pings and must not be dropped during a step. */
const BARE_PING_TIMEOUT_MS = 60_000;

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

function fillerEvent() {
  const n = ++fillerN;
  const side = n % 2 === 0 ? 'bid' : 'ask';
  return book(FILLER_ISIN, side, ladder(side, 20, n, 0.005), `filler-${n}`);
}

/** Pumps filler until some /market queue is non-empty (kernel buffers full) or the cap; returns events and ms. */
async function prefill(system: TestSystem, maxMs = 15_000): Promise<{ events: number; ms: number; queue: number }> {
  const { ingest } = system;
  const { gateway } = system.server;
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
    private readonly system: TestSystem,
    private readonly expectedSubscribers: number,
    private readonly stalled: number,
  ) {
    this.timer = setInterval(() => this.sample(), 50);
  }

  /** Subscribers of the bench topic still in a room (paused ones have left it). */
  subscribers(): number {
    return this.system.server.gateway.hub.stats().find((s) => s.topic === BENCH_TOPIC)?.subscribers ?? 0;
  }

  private sample(): void {
    const { gateway } = this.system.server;
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

async function droppedByReason(system: TestSystem): Promise<Record<string, number>> {
  const metric = system.metrics.registry.getSingleMetric('bondx_messages_dropped_total');
  const out: Record<string, number> = {};
  if (!metric) return out;
  for (const v of (await metric.get()).values) {
    const reason = String(v.labels.reason ?? 'unknown');
    out[reason] = (out[reason] ?? 0) + v.value;
  }
  return out;
}

interface Fill {
  events: number;
  ms: number;
  queue: number;
}

/** Samples `f` every 50 ms and keeps the largest value. */
class MaxSampler {
  max: number;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly f: () => number) {
    this.max = f();
    this.timer = setInterval(() => this.sample(), 50);
  }

  private sample(): void {
    this.max = Math.max(this.max, this.f());
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.max;
  }
}

const rssMb = () => process.memoryUsage.rss() / 2 ** 20;

/** `clients`, delivery and latency: the healthy clients'. */
interface Row extends StepFigures {
  variant: Variant;
  stalled: number;
  rate: number;
  noisy: boolean;
  /** Largest outbound queue seen during the step (frames): ours = /market send queue, bare = a stalled socket's Engine.IO writeBuffer. */
  maxQueue: number;
  /** This process's RSS (MB) after a GC before the stalled clients connect, after their pre-fill, and the largest sampled up to the end of the step. */
  rss: { before: number; afterFill: number; max: number; end: number };
  /** Stalled clients paused (out of the room, awaiting conflation) at the end of the step. */
  pausedAtEnd: number;
  firstPausedMs: number;
  allPausedMs: number;
  release: ReleaseResult | null;
  fill: Fill | null;
  /** Bare: stalled sockets still connected on the server at the end of the step (none dropped by a ping timeout); ours: null. */
  stalledConnectedAtEnd: number | null;
  /** bondx_messages_dropped_total increase over the step and the release, by reason (ours; bare has no such counter). */
  dropped: Record<string, number>;
}

/** The fields of a row that depend on the server under test (flow control, queues, release). */
type VariantFields = Pick<Row, 'maxQueue' | 'pausedAtEnd' | 'firstPausedMs' | 'allPausedMs' | 'release' | 'stalledConnectedAtEnd' | 'dropped'>;

/** What differs between our gateway and bare Socket.IO in a step. */
interface StepDriver {
  publisher: Publisher;
  /** Connects `stalled` clients that stop reading, and fills their kernel buffers. */
  stall(stalled: number): Promise<Fill>;
  /** Starts watching the step; `stop` (after the measurement) releases the stalled clients and reports. */
  watch(stalled: number): Promise<{ stop(): Promise<VariantFields> }>;
}

interface BareServer extends BareSocketIo {
  stalled: Set<IoSocket>;
}

/** Engine.IO internals read by the probe (not part of its typings): the per-socket write buffer and the TCP socket. */
interface EioInternals {
  writeBuffer: unknown[];
  transport: { socket?: { _socket?: { writableLength: number } } };
}

const eio = (s: IoSocket) => s.conn as unknown as EioInternals;

/** Largest Engine.IO writeBuffer (packets) over the stalled sockets. */
function bareQueue(bare: BareServer): number {
  let max = 0;
  for (const s of bare.stalled) max = Math.max(max, eio(s).writeBuffer.length);
  return max;
}

/** A plain Socket.IO server, as bench/server.ts's bare mode, with a `stalled` room for sockets whose handshake query has stalled=1. */
async function startBare(): Promise<BareServer> {
  const server = await startBareServer({ pingTimeout: BARE_PING_TIMEOUT_MS });
  const stalled = new Set<IoSocket>();
  server.io.on('connection', (socket) => {
    if (socket.handshake.query.stalled !== '1') return;
    void socket.join('stalled');
    stalled.add(socket);
    socket.once('disconnect', () => stalled.delete(socket));
  });
  return { ...server, stalled };
}

/** Pumps filler to the `stalled` room until every stalled socket has frames its TCP socket could not take (kernel buffers full) and packets queued behind them. */
async function prefillBare(bare: BareServer, maxMs = 15_000): Promise<Fill> {
  const t0 = hrNow();
  let events = 0;
  const full = () => [...bare.stalled].every((s) => eio(s).writeBuffer.length > 0 && (eio(s).transport.socket?._socket?.writableLength ?? 0) > 0);
  while (hrNow() - t0 < maxMs) {
    for (let i = 0; i < 50; i++) bare.io.to('stalled').emit('filler', fillerEvent());
    events += 50;
    await new Promise((resolve) => setImmediate(resolve));
    if (full()) break;
  }
  return { events, ms: hrNow() - t0, queue: bareQueue(bare) };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  log(
    `variants ${VARIANTS.join(',')}: ${CLIENTS} healthy socket.io clients, ${STALLED} stalled clients (${opts.stalled} %), rates ${RATES.join(',')} ev/s, WS_MAX_QUEUE_SIZE ${MAX_QUEUE}, ${TIMING.warmupS}+${TIMING.stepS} s per step; bare pingTimeout ${BARE_PING_TIMEOUT_MS / 1000} s`,
  );
  const idleBusy = await waitForQuietMachine(log);
  const system = VARIANTS.includes('ours') ? await startTestSystem({ WS_MAX_CONNECTIONS: String(CLIENTS + STALLED + 100), WS_MAX_QUEUE_SIZE: String(MAX_QUEUE) }) : null;
  let bare: BareServer | null = null;
  const healthyChild = startChild('healthy', 'clients.ts');
  const stalledChild = startChild('stalled', 'ws-clients.ts');
  try {
    const budget = { retries: opts.retries, maxOtherPct: 40, log };
    const rows: Row[] = [];

    const report = (row: Row) => {
      rows.push(row);
      const { release } = row;
      log(
        `${row.variant} ${row.rate} ev/s, ${row.stalled} stalled: healthy ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), p50 ${fmtMs(row.latency.p50)} p99 ${fmtMs(row.latency.p99)} ms; ` +
          `max queue ${row.maxQueue}; RSS ${row.rss.before.toFixed(0)} MB, +${(row.rss.afterFill - row.rss.before).toFixed(1)} after fill, +${(row.rss.max - row.rss.before).toFixed(1)} max` +
          (row.variant === 'ours' ? `, paused at end ${row.pausedAtEnd}${row.stalled ? ` (first after ${fmtInt(row.firstPausedMs)} ms, all after ${fmtInt(row.allPausedMs)} ms)` : ''}` : '') +
          (release
            ? `; on release: ${release.conflated} conflated (${fmtInt(release.skipped)} deltas skipped), closed ${JSON.stringify(release.closed)}, neither ${release.neither}, ${(release.bytesPerStalled / 2 ** 20).toFixed(1)} MB read per stalled client`
            : '') +
          (row.stalledConnectedAtEnd !== null ? `; ${row.stalledConnectedAtEnd} stalled still connected at the end` : '') +
          `; dropped ${JSON.stringify(row.dropped)}; CPU server ${fmtPct(row.serverCpuPct)} clients ${fmtPct(row.clientCpuPct)} other ${fmtPct(row.otherCpuPct)}`,
      );
    };

    /** One step per (rate, stalled share): the same skeleton for both servers; `driver` holds what differs. */
    const runSteps = async (variant: Variant, healthy: ClientGroup, driver: StepDriver) => {
      for (const rate of RATES) {
        for (const stalled of [0, STALLED]) {
          await quiesce([healthy]);
          await fullGc();
          const rssBefore = rssMb();
          const rssProbe = new MaxSampler(rssMb);
          const fill = stalled > 0 ? await driver.stall(stalled) : null;
          const rssAfterFill = rssMb();
          const watch = await driver.watch(stalled);
          const m = await measureQuietStep([healthy], rate, TIMING, driver.publisher, budget);
          const rssEnd = rssMb();
          const rssMax = rssProbe.stop();
          const own = await watch.stop();
          report({ variant, stalled, rate, ...figures(m), noisy: m.noisy, rss: { before: rssBefore, afterFill: rssAfterFill, max: rssMax, end: rssEnd }, fill, ...own });
        }
      }
    };

    for (const variant of VARIANTS) {
      if (variant === 'ours') {
        if (!system) throw new Error('our system is not started');
        const { ingest, server } = system;
        await ingest.submit(benchQuote(0, 0), 'bench');
        await ingest.submit(fillerEvent(), 'bench');
        const token = system.token('bench-trader');
        const events = submitter(ingest);
        const conn = await healthyChild.rpc.call<ConnectResult>('connect', { url: server.url, namespace: '/market', token, count: CLIENTS, subscribe: { topic: BENCH_TOPIC, batch_size: null } } satisfies ConnectArgs, 300_000);
        log(`ours: ${conn.connected} healthy clients subscribed in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
        if (conn.connected === 0) throw new Error(`no client connected: ${conn.firstError}`);
        const healthy = await clientGroup(healthyChild);
        const wsUrl = `${server.url.replace('http://', 'ws://')}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token)}`;
        await runSteps(variant, healthy, {
          publisher: localPublisher((step, n) => events.submit(benchQuote(step, n))),
          async stall(stalled) {
            const s = await stalledChild.rpc.call<ConnectResult>('connect', { url: wsUrl, count: stalled, topic: BENCH_TOPIC, extraTopics: [FILLER_TOPIC], stall: true } satisfies WsConnectArgs, 120_000);
            if (s.connected !== stalled) throw new Error(`stalled clients: ${s.connected} of ${stalled} connected (${s.firstError})`);
            const fill = await prefill(system);
            log(`ours: pre-filled the stalled clients' kernel buffers: ${fill.events} filler events in ${fmtInt(fill.ms)} ms (largest queue now ${fill.queue})`);
            return fill;
          },
          async watch(stalled) {
            const dropped0 = await droppedByReason(system);
            const probe = new FlowProbe(system, conn.connected + stalled, stalled);
            return {
              async stop() {
                const flow = probe.stop();
                // Stalled clients read again: paused ones get a conflated snapshot once their queue drains.
                const release = stalled > 0 ? await stalledChild.rpc.call<ReleaseResult>('release', { timeoutMs: 5_000 }) : null;
                if (stalled > 0) await stalledChild.rpc.call('closeAll');
                const dropped1 = await droppedByReason(system);
                const dropped: Record<string, number> = {};
                for (const [reason, v] of Object.entries(dropped1)) if (v - (dropped0[reason] ?? 0) > 0) dropped[reason] = v - (dropped0[reason] ?? 0);
                return { maxQueue: probe.maxQueue, pausedAtEnd: flow.pausedNow, firstPausedMs: probe.firstPausedMs, allPausedMs: probe.allPausedMs, release, stalledConnectedAtEnd: null, dropped };
              },
            };
          },
        });
        if (events.errors() > 0) log(`WARNING: ${events.errors()} events not applied`);
        await healthyChild.rpc.call('closeAll');
      } else {
        const b = await startBare();
        bare = b;
        const conn = await healthyChild.rpc.call<ConnectResult>('connect', { url: b.url, namespace: '/', token: null, count: CLIENTS, subscribe: null } satisfies ConnectArgs, 300_000);
        log(`bare: ${conn.connected} healthy clients connected in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
        if (conn.connected === 0) throw new Error(`no client connected: ${conn.firstError}`);
        const healthy = await clientGroup(healthyChild);
        const eioUrl = `${b.url.replace('http://', 'ws://')}/socket.io/?EIO=4&transport=websocket&stalled=1`;
        let seq = 0;
        await runSteps(variant, healthy, {
          // The same envelope our gateway sends for a quote, broadcast to every socket (stalled ones included).
          publisher: localPublisher((step, n) => b.io.emit('delta', quoteEnvelope(benchQuote(step, n), ++seq, 'bare'))),
          async stall(stalled) {
            const s = await stalledChild.rpc.call<ConnectResult>('connectBareStalled', { url: eioUrl, count: stalled } satisfies BareStalledArgs, 120_000);
            if (s.connected !== stalled || b.stalled.size !== stalled) throw new Error(`stalled clients: ${s.connected} of ${stalled} connected, ${b.stalled.size} in the room (${s.firstError})`);
            const fill = await prefillBare(b);
            log(`bare: pre-filled the stalled clients' kernel buffers: ${fill.events} filler events in ${fmtInt(fill.ms)} ms (largest writeBuffer now ${fill.queue})`);
            return fill;
          },
          async watch(stalled) {
            const queueProbe = new MaxSampler(() => bareQueue(b));
            return {
              async stop() {
                const maxQueue = queueProbe.stop();
                const stillStalled = b.stalled.size;
                if (stalled > 0) await stalledChild.rpc.call('closeAll');
                // Let the server notice the closed connections and free their buffers before the next step.
                const until = hrNow() + 5_000;
                while (b.stalled.size > 0 && hrNow() < until) await sleep(50);
                // Bare Socket.IO has no flow control: nobody is paused; count those still connected (not dropped) instead.
                return { maxQueue, pausedAtEnd: 0, firstPausedMs: Number.NaN, allPausedMs: Number.NaN, release: null, stalledConnectedAtEnd: stalled > 0 ? stillStalled : null, dropped: {} };
              },
            };
          },
        });
        await healthyChild.rpc.call('closeAll');
      }
    }

    const env = machine();
    const variantOrder = (v: Variant) => VARIANTS.indexOf(v);
    const sorted = [...rows].sort((a, b) => a.rate - b.rate || a.stalled - b.stalled || variantOrder(a.variant) - variantOrder(b.variant));
    const mb = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(1);
    const out: string[] = [];
    out.push(`### Fan-out with stalled clients: ${CLIENTS} healthy socket.io clients + ${STALLED} stalled clients, ours (WS_MAX_QUEUE_SIZE ${MAX_QUEUE}) vs bare Socket.IO (${env.cpus} cores, Node ${env.node}, 127.0.0.1)`);
    out.push('');
    out.push(
      `Healthy = socket.io-client (ours: on /market subscribed to ${BENCH_TOPIC}; bare: on / of a plain Socket.IO server in the same process broadcasting the same envelope with \`io.emit('delta', ...)\`, websocket transport, perMessageDeflate off); latency = receipt - publish, ${TIMING.warmupS} s warm-up + ${TIMING.stepS} s measured. ` +
        `Stalled: ours = \`ws\` clients on /api/v1/ws/market/${BENCH_ISIN} that stop reading after their subscribe ack; bare = raw Engine.IO \`ws\` clients that send \`40\` (connect to /) and stop reading (they stop answering pings too: the bare server's pingTimeout is ${BARE_PING_TIMEOUT_MS / 1000} s so none is dropped during a step). ` +
        `Stalled clients connect fresh for each step and their kernel buffers are then pre-filled through a second stream only they receive (ours: a second topic; bare: a \`stalled\` room), ~1 KB book deltas. ` +
        `Max queue = largest outbound queue in frames (ours: /market send queue; bare: a stalled socket's Engine.IO writeBuffer, unbounded). RSS = this (server) process, growth over its value after a GC before the stalled clients connect: at the end of the pre-fill / the largest sampled until the end of the step (0-stalled rows show the noise floor). ` +
        `Paused = stalled clients our flow control took out of the room (conflated), first / all at ms after the step's start; conflated = those that got a \`meta.conflated\` snapshot once reading again. CPU is % of one core.`,
    );
    out.push('');
    out.push(
      table(
        ['variant', 'ev/s', 'stalled', 'healthy delivered msg/s', 'delivered', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CPU server / clients / other', 'max queue', 'RSS growth MB (fill / step max)', 'paused (first / all at)', 'conflated on release', 'deltas skipped'],
        sorted.map((r) => [
          r.variant,
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
          `${r.fill ? mb(r.rss.afterFill - r.rss.before) : '–'} / ${mb(r.rss.max - r.rss.before)}`,
          r.stalled === 0 || r.variant === 'bare' ? '–' : `${r.pausedAtEnd} of ${r.stalled} (${fmtInt(r.firstPausedMs)} / ${fmtInt(r.allPausedMs)} ms)`,
          r.release ? `${r.release.conflated} of ${r.release.stalled}${Object.keys(r.release.closed).length ? `, closed ${JSON.stringify(r.release.closed)}` : ''}` : '–',
          r.release ? fmtInt(r.release.skipped) : '–',
        ]),
      ),
    );
    if (sorted.some((r) => r.noisy)) out.push('', '\\* other processes on the machine used more than 40% of a core during that step (even after re-runs): treat it as noisy');
    const md = out.join('\n');
    console.log(`\n${md}\n`);
    const file = writeResults('slow-clients', {
      durationS: (Date.now() - t0) / 1000,
      machineBusyBeforePct: idleBusy,
      config: { variants: VARIANTS, clients: CLIENTS, stalled: STALLED, rates: RATES, maxQueue: MAX_QUEUE, barePingTimeoutMs: BARE_PING_TIMEOUT_MS, ...TIMING, retries: opts.retries },
      rows: sorted,
      markdown: md,
    });
    log(`results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    await Promise.all([stopChild(healthyChild), stopChild(stalledChild)]);
    await system?.close();
    await bare?.close();
  }
}

runMain(main);
