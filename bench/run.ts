import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BENCH_TOPIC,
  clockOffset,
  hrNow,
  LatencyHistogram,
  machineBusyPct,
  machineCpu,
  RpcClient,
  sleep,
  type ConnectArgs,
  type ConnectResult,
  type MemStats,
  type ResumeResult,
  type RunResult,
  type StartResult,
  type StepStats,
  type Variant,
} from './shared.js';

/**
 * `npm run bench`: fan-out of quote deltas through OUR gateway (with and without batching) next to a
 * bare Socket.IO broadcast of the same envelopes, plus idle-connection memory and resume catch-up.
 * The server runs in one child process, the clients in another (or several), all on 127.0.0.1.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

const { values: opts } = parseArgs({
  options: {
    // 250 clients in 2 client processes: with 1000 the client processes saturate the 2-core box for every
    // variant, and latency measures the clients rather than the servers (see README, Benchmarks).
    clients: { type: 'string', default: '250' },
    rates: { type: 'string', default: '50,100,200,400,800,1600' },
    batch: { type: 'string', default: '100' },
    variants: { type: 'string', default: 'ours,ours/batch,bare' },
    warmup: { type: 'string', default: '1' },
    step: { type: 'string', default: '3' },
    drain: { type: 'string', default: '3' },
    idle: { type: 'string', default: '2000' },
    resume: { type: 'string', default: '10000' },
    'client-procs': { type: 'string', default: '2' },
    'resume-batch': { type: 'string', default: '100' },
    'keep-going': { type: 'boolean', default: false },
    retries: { type: 'string', default: '4' },
    out: { type: 'string', default: join(HERE, 'results', 'latest.json') },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (opts.help) {
  console.log(`npm run bench -- [options]
  --clients N          subscribed clients per fan-out variant (default 250)
  --rates a,b,c        target events/s steps, rising (default 50,100,200,400,800,1600)
  --batch N            batch_size for the ours/batch variant; 0 drops that variant (default 100)
  --variants list      any of ours,ours/batch,bare (default all three)
  --warmup S           warm-up seconds per step, not measured (default 1)
  --step S             measured seconds per step (default 3)
  --drain S            max seconds to wait for stragglers after a step (default 3)
  --idle K             idle connections for the memory test; 0 skips (default 2000)
  --resume M           entries to resume for the catch-up test; 0 skips (default 10000)
  --client-procs P     client processes the N clients are split over (default 2)
  --resume-batch B     batch_size of the resuming client; 0 = one frame per delta (default 100)
  --keep-going         keep raising the rate after a variant saturates (default: stop it after 2 saturated steps)
  --retries N          re-runs allowed for steps disturbed by other load on the machine (default 4)
  --out FILE           JSON results (default bench/results/latest.json)`);
  process.exit(0);
}

function int(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer >= ${min} (got ${value})`);
    process.exit(2);
  }
  return n;
}

const CLIENTS = int('clients', opts.clients, 1);
const RATES = (opts.rates ?? '').split(',').map((r) => int('rates', r.trim(), 1));
const BATCH = int('batch', opts.batch, 0);
const WARMUP_S = Number(opts.warmup);
const STEP_S = Number(opts.step);
const DRAIN_S = Number(opts.drain);
const IDLE = int('idle', opts.idle, 0);
const RESUME = int('resume', opts.resume, 0);
const CLIENT_PROCS = int('client-procs', opts['client-procs'], 1);
const RESUME_BATCH = int('resume-batch', opts['resume-batch'], 0);
const KNOWN: Variant[] = ['ours', 'ours/batch', 'bare'];
const VARIANTS = (opts.variants ?? '')
  .split(',')
  .map((v) => v.trim())
  .filter((v): v is Variant => (KNOWN as string[]).includes(v))
  .filter((v) => v !== 'ours/batch' || BATCH > 1);
if (![WARMUP_S, STEP_S, DRAIN_S].every((s) => Number.isFinite(s) && s > 0)) {
  console.error('--warmup, --step and --drain must be positive numbers of seconds');
  process.exit(2);
}

/** Extra wait after a step's stats for a backlog to clear before the next step. */
const QUIESCE_S = 5;
/** Steps during which other processes used more than this (% of one core) are re-run, within a budget. */
const NOISY_OTHER_PCT = 50;
let noisyRetries = int('retries', opts.retries, 0);

/** Pass criteria for the summary. */
const P99_LIMIT_MS = 50;
const DELIVERY_LIMIT = 0.99;

// ---------------------------------------------------------------- child processes

interface Child {
  proc: ChildProcess;
  rpc: RpcClient;
}

const children = new Set<ChildProcess>();

function startChild(name: string, file: string, nodeFlags: string[]): Child {
  const proc = spawn(TSX, [...nodeFlags, join(HERE, file)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return { proc, rpc: new RpcClient(name, proc) };
}

async function stopChild(child: Child, viaRpc: boolean): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.proc.once('exit', () => resolve()));
  if (viaRpc) await child.rpc.call('stop', null, 10_000).catch(() => undefined);
  else child.proc.disconnect();
  await Promise.race([exited, sleep(5_000)]);
  if (child.proc.exitCode === null && child.proc.signalCode === null) {
    child.proc.kill('SIGKILL');
    await exited;
  }
}

function killAll(): void {
  for (const proc of children) if (proc.exitCode === null) proc.kill('SIGKILL');
}
process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});

/** Runs `fn` with a fresh server process and `clientProcs` client processes, always tearing them down. */
async function withProcesses<T>(clientProcs: number, fn: (server: RpcClient, clients: RpcClient[]) => Promise<T>): Promise<T> {
  const server = startChild('server', 'server.ts', ['--expose-gc']);
  const clients = Array.from({ length: clientProcs }, (_, i) => startChild(`clients#${i + 1}`, 'clients.ts', ['--max-old-space-size=4096']));
  try {
    return await fn(
      server.rpc,
      clients.map((c) => c.rpc),
    );
  } finally {
    await Promise.all([stopChild(server, true), ...clients.map((c) => stopChild(c, false))]);
  }
}

function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

async function connectAll(clients: RpcClient[], total: number, base: Omit<ConnectArgs, 'count'>): Promise<ConnectResult> {
  const shares = split(total, clients.length);
  const results = await Promise.all(clients.map((c, i) => c.call<ConnectResult>('connect', { ...base, count: shares[i] ?? 0 }, 300_000)));
  return {
    connected: results.reduce((n, r) => n + r.connected, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    firstError: results.find((r) => r.firstError !== null)?.firstError ?? null,
    ms: Math.max(...results.map((r) => r.ms)),
  };
}

// ---------------------------------------------------------------- fan-out

interface StepRow {
  variant: Variant;
  rate: number;
  clients: number;
  published: number;
  /** Events/s the driver actually achieved over the whole step. */
  achievedRate: number;
  expectedMsgsPerSec: number;
  deliveredMsgsPerSec: number;
  deliveredPct: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  serverRssMb: number;
  serverCpuPct: number;
  clientCpuPct: number;
  /** Machine-wide busy CPU not accounted to the server or client processes (other work on the box). */
  otherCpuPct: number;
  driverMaxBehind: number;
  batchFrames: number;
  deltaFrames: number;
  envelopesPerFrame: number;
  duplicates: number;
  /** Envelopes still undelivered when the next step started (after the quiesce wait). */
  backlogLeft: number;
  /** Other processes used more than NOISY_OTHER_PCT of a core during the step. */
  noisy: boolean;
  pass: boolean;
}

interface VariantResult {
  variant: Variant;
  clients: number;
  connectMs: number;
  rows: StepRow[];
  notes: string[];
}

let stepCounter = 0;

/** One variant's server and client processes, alive for the whole fan-out phase. */
interface VariantRig {
  variant: Variant;
  serverChild: Child;
  clientChildren: Child[];
  server: RpcClient;
  clients: RpcClient[];
  connected: number;
  /** Per client process: its clock minus the server's (ms). */
  shifts: number[];
  result: VariantResult;
  active: boolean;
  saturatedSteps: number;
}

function startProcesses(clientProcs: number): { server: Child; clients: Child[] } {
  return {
    server: startChild('server', 'server.ts', ['--expose-gc']),
    clients: Array.from({ length: clientProcs }, (_, i) => startChild(`clients#${i + 1}`, 'clients.ts', ['--max-old-space-size=4096'])),
  };
}

async function stopProcesses(p: { server: Child; clients: Child[] }): Promise<void> {
  await Promise.all([stopChild(p.server, true), ...p.clients.map((c) => stopChild(c, false))]);
}

async function setUpVariant(variant: Variant): Promise<VariantRig> {
  const procs = startProcesses(CLIENT_PROCS);
  const server = procs.server.rpc;
  const clients = procs.clients.map((c) => c.rpc);
  try {
    const started = await server.call<StartResult>('start', { kind: variant === 'bare' ? 'bare' : 'ours', maxConnections: CLIENTS + 100, historyMaxLen: 10_000 });
    const subscribe = variant === 'bare' ? null : { topic: BENCH_TOPIC, batch_size: variant === 'ours/batch' ? BATCH : null };
    const conn = await connectAll(clients, CLIENTS, { url: started.url, namespace: started.namespace, token: started.token, subscribe });
    console.log(`[${variant}] ${conn.connected} clients connected${subscribe ? ' and subscribed' : ''} in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
    if (conn.connected === 0) throw new Error(`[${variant}] no client connected: ${conn.firstError}`);
    const serverClock = await clockOffset(server);
    const clientClocks = await Promise.all(clients.map((c) => clockOffset(c)));
    const shifts = clientClocks.map((c) => c.offset - serverClock.offset);
    console.log(`[${variant}] clock offset client-server: ${shifts.map((x) => `${x.toFixed(3)} ms`).join(', ')} (IPC rtt ${serverClock.rtt.toFixed(2)} ms)`);
    return {
      variant,
      serverChild: procs.server,
      clientChildren: procs.clients,
      server,
      clients,
      connected: conn.connected,
      shifts,
      result: { variant, clients: conn.connected, connectMs: conn.ms, rows: [], notes: [] },
      active: true,
      saturatedSteps: 0,
    };
  } catch (err) {
    await stopProcesses(procs);
    throw err;
  }
}

async function tearDownVariant(rig: VariantRig): Promise<void> {
  await Promise.all(rig.clients.map((c) => c.call('closeAll').catch(() => undefined)));
  await stopProcesses({ server: rig.serverChild, clients: rig.clientChildren });
}

async function runStep(rig: VariantRig, rate: number): Promise<StepRow> {
  const { variant, server, clients, shifts } = rig;
  const cores = cpus().length;
  const step = ++stepCounter;
  const cpu0 = await server.call<{ cpuMs: number }>('cpu');
  const machine0 = machineCpu();
  const t0 = hrNow();
  await Promise.all(clients.map((c) => c.call('beginStep', { step })));
  const run = await server.call<RunResult>('run', { step, rate, durationMs: (WARMUP_S + STEP_S) * 1000 }, 120_000);
  const windowStart = run.startedAt + WARMUP_S * 1000;
  const windowEnd = run.startedAt + (WARMUP_S + STEP_S) * 1000;
  let windowFrom = run.publishTimes.findIndex((t) => t >= windowStart);
  if (windowFrom < 0) windowFrom = run.published;
  const windowTo = run.published;
  // Wait for stragglers: until every client has every event of the step, or the drain time is up.
  const want = run.published * rig.connected;
  const drainUntil = Date.now() + DRAIN_S * 1000;
  for (;;) {
    const got = (await Promise.all(clients.map((c) => c.call<{ received: number }>('progress')))).reduce((n, p) => n + p.received, 0);
    if (got >= want || Date.now() >= drainUntil) break;
    await sleep(100);
  }
  const stats = await Promise.all(
    clients.map((c, i) => c.call<StepStats>('endStep', { publishTimes: run.publishTimes, clockShift: shifts[i] ?? 0, windowFrom, windowTo, windowStart, windowEnd }, 60_000)),
  );
  const elapsedMs = hrNow() - t0;
  const machine1 = machineCpu();
  const cpu1 = await server.call<{ cpuMs: number }>('cpu');
  // Let a backlog finish before the next step (of any variant) starts, so it does not load that step.
  const quiesceUntil = Date.now() + QUIESCE_S * 1000;
  let left = 0;
  for (;;) {
    const got = (await Promise.all(clients.map((c) => c.call<{ received: number }>('progress')))).reduce((n, p) => n + p.received, 0);
    left = Math.max(0, want - got);
    if (left === 0 || Date.now() >= quiesceUntil) break;
    await sleep(100);
  }
  const hist = new LatencyHistogram();
  for (const st of stats) hist.merge(st.latency);
  const sum = (f: (st: StepStats) => number) => stats.reduce((n, st) => n + f(st), 0);
  const expected = sum((st) => st.expected);
  const delivered = sum((st) => st.delivered);
  const stepMs = run.endedAt - run.startedAt;
  const row: StepRow = {
    variant,
    rate,
    clients: sum((st) => st.clients),
    published: run.published,
    achievedRate: run.published / (stepMs / 1000),
    expectedMsgsPerSec: rate * sum((st) => st.clients),
    deliveredMsgsPerSec: sum((st) => st.inWindowMsgs) / STEP_S,
    deliveredPct: expected > 0 ? (100 * Math.min(delivered, expected)) / expected : 0,
    p50: hist.percentile(50),
    p95: hist.percentile(95),
    p99: hist.percentile(99),
    max: hist.count > 0 ? hist.max : Number.NaN,
    serverRssMb: run.rssMb,
    serverCpuPct: (100 * (cpu1.cpuMs - cpu0.cpuMs)) / elapsedMs,
    clientCpuPct: (100 * sum((st) => st.cpuMs)) / elapsedMs,
    otherCpuPct: Number.NaN,
    driverMaxBehind: run.maxBehind,
    batchFrames: sum((st) => st.batchFrames),
    deltaFrames: sum((st) => st.deltaFrames),
    envelopesPerFrame: Number.NaN,
    duplicates: sum((st) => st.duplicates),
    backlogLeft: left,
    noisy: false,
    pass: false,
  };
  row.envelopesPerFrame = sum((st) => st.received) / Math.max(1, row.batchFrames + row.deltaFrames);
  row.otherCpuPct = Math.max(0, machineBusyPct(machine0, machine1, cores) - row.serverCpuPct - row.clientCpuPct);
  row.noisy = row.otherCpuPct > NOISY_OTHER_PCT;
  row.pass = row.p99 <= P99_LIMIT_MS && row.deliveredPct >= DELIVERY_LIMIT * 100;
  console.log(
    `[${variant}] ${rate} ev/s x ${row.clients} clients: ${fmtInt(row.deliveredMsgsPerSec)} msg/s delivered (${row.deliveredPct.toFixed(2)}%), ` +
      `p50 ${fmtMs(row.p50)} p95 ${fmtMs(row.p95)} p99 ${fmtMs(row.p99)} max ${fmtMs(row.max)} ms, ` +
      `CPU server ${row.serverCpuPct.toFixed(0)}% clients ${row.clientCpuPct.toFixed(0)}% other ${fmtPct(row.otherCpuPct)}, server RSS ${row.serverRssMb.toFixed(0)} MB` +
      (variant === 'ours/batch' ? `, ${fmtInt(row.batchFrames)} batch + ${fmtInt(row.deltaFrames)} single frames (${row.envelopesPerFrame.toFixed(1)} envelopes/frame)` : '') +
      (row.duplicates ? `, ${row.duplicates} duplicates` : '') +
      (row.backlogLeft ? `, ${fmtInt(row.backlogLeft)} still undelivered after ${QUIESCE_S} s more` : '') +
      (row.pass ? '' : '  <- FAIL'),
  );
  return row;
}

/**
 * All variants are set up first and their steps interleaved (rate by rate: ours, ours/batch, bare),
 * so load from elsewhere on the machine hits them alike. A variant drops out once it is saturated.
 */
async function runFanOut(): Promise<VariantResult[]> {
  const rigs: VariantRig[] = [];
  try {
    for (const variant of VARIANTS) rigs.push(await setUpVariant(variant));
    await sleep(500);
    for (const rate of RATES) {
      for (const rig of rigs) {
        if (!rig.active) continue;
        let row = await runStep(rig, rate);
        let last = row;
        while (last.noisy && noisyRetries > 0) {
          noisyRetries--;
          console.log(`[${rig.variant}] other processes used ${fmtPct(last.otherCpuPct)} of a core during that step: running it again (${noisyRetries} re-runs left)`);
          await sleep(1000);
          last = await runStep(rig, rate);
          if (last.otherCpuPct < row.otherCpuPct) row = last;
        }
        rig.result.rows.push(row);
        const saturated = !row.pass && (row.deliveredPct < 95 || row.p99 > 1000);
        rig.saturatedSteps = saturated ? rig.saturatedSteps + 1 : 0;
        // A second saturated step in a row measures the variant's capacity; beyond that it only burns time.
        if (rig.saturatedSteps >= 2 && !opts['keep-going']) {
          const note = `saturated from ${rig.result.rows[rig.result.rows.length - 2]?.rate ?? rate} ev/s: higher rates skipped (use --keep-going to run them)`;
          rig.result.notes.push(note);
          console.log(`[${rig.variant}] ${note}`);
          rig.active = false;
        }
        await sleep(200);
      }
    }
    for (const rig of rigs) {
      if (rig.variant === 'ours/batch' && rig.result.rows.every((r) => r.batchFrames === 0)) {
        const note = `no \`batch\` frames were received at any rate (batch_size=${BATCH} not honoured by the server?): these rows are plain deltas`;
        rig.result.notes.push(note);
        console.log(`[${rig.variant}] NOTE: ${note}`);
      }
    }
    return rigs.map((r) => r.result);
  } finally {
    for (const rig of rigs) await tearDownVariant(rig);
  }
}

// ---------------------------------------------------------------- idle memory

interface MemoryResult {
  server: 'ours' | 'bare';
  connections: number;
  serverSeen: number;
  gc: boolean;
  rssBeforeMb: number;
  rssAfterMb: number;
  rssKbPerConn: number;
  heapKbPerConn: number;
}

async function runIdleMemory(kind: 'ours' | 'bare'): Promise<MemoryResult> {
  return withProcesses(1, async (server, clients) => {
    const started = await server.call<StartResult>('start', { kind, maxConnections: IDLE + 100, historyMaxLen: 10_000 });
    // Warm-up: code compiled on the first connections is a one-off cost, not a per-connection one.
    await connectAll(clients, 50, { url: started.url, namespace: started.namespace, token: started.token, subscribe: null });
    await clients[0]?.call('closeAll');
    await sleep(300);
    const before = await server.call<MemStats>('mem', { gc: true });
    const conn = await connectAll(clients, IDLE, { url: started.url, namespace: started.namespace, token: started.token, subscribe: null });
    await sleep(1000);
    const after = await server.call<MemStats>('mem', { gc: true });
    const seen = await server.call<{ connections: number }>('connections');
    await clients[0]?.call('closeAll');
    const n = Math.max(1, conn.connected);
    const result: MemoryResult = {
      server: kind,
      connections: conn.connected,
      serverSeen: seen.connections,
      gc: after.gc,
      rssBeforeMb: before.rss / 2 ** 20,
      rssAfterMb: after.rss / 2 ** 20,
      rssKbPerConn: (after.rss - before.rss) / 1024 / n,
      heapKbPerConn: (after.heapUsed - before.heapUsed) / 1024 / n,
    };
    console.log(
      `[memory/${kind}] ${conn.connected} idle connections (server sees ${seen.connections}${conn.failed ? `, ${conn.failed} failed: ${conn.firstError}` : ''}): ` +
        `RSS ${result.rssBeforeMb.toFixed(1)} -> ${result.rssAfterMb.toFixed(1)} MB = ${result.rssKbPerConn.toFixed(1)} KB/conn, heapUsed ${result.heapKbPerConn.toFixed(1)} KB/conn${after.gc ? ' (after GC)' : ' (no GC exposed)'}`,
    );
    return result;
  });
}

// ---------------------------------------------------------------- resume

interface ResumeSummary {
  entries: number;
  head: number;
  fromSeq: number;
  runs: ResumeResult[];
  medianMs: number;
  entriesPerSec: number;
}

async function runResume(): Promise<ResumeSummary> {
  return withProcesses(1, async (server, clients) => {
    const client = clients[0];
    if (!client) throw new Error('no client process');
    const started = await server.call<StartResult>('start', { kind: 'ours', maxConnections: 100, historyMaxLen: RESUME + 2000 });
    // Some history before the resume point, then the entries the client will be missing.
    const lead = 1000;
    const bulk = await server.call<{ head: number; ms: number; errors: number }>('publishBulk', { count: lead + RESUME, step: ++stepCounter }, 300_000);
    if (bulk.errors > 0) throw new Error(`resume: ${bulk.errors} events were not applied`);
    const fromSeq = bulk.head - RESUME;
    console.log(`[resume] published ${lead + RESUME} quotes in ${fmtInt(bulk.ms)} ms (head ${bulk.head}); resuming from ${fromSeq}`);
    const runs: ResumeResult[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await client.call<ResumeResult>('resume', { url: started.url, namespace: started.namespace, token: started.token ?? '', topic: BENCH_TOPIC, fromSeq, expected: RESUME, batchSize: RESUME_BATCH }, 60_000);
      runs.push(r);
      console.log(
        `[resume] run ${i + 1}: ${r.received} deltas (seq ${r.firstSeq}..${r.lastSeq}, ${r.contiguous ? 'contiguous' : 'NOT contiguous'}${r.snapshot ? ', got a snapshot (re-sync!)' : ''}) ` +
          `all received in ${fmtMs(r.allMs)} ms (ack after ${fmtMs(r.ackMs)} ms)`,
      );
    }
    const sorted = runs.map((r) => r.allMs).sort((a, b) => a - b);
    const medianMs = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
    return { entries: RESUME, head: bulk.head, fromSeq, runs, medianMs, entriesPerSec: RESUME / (medianMs / 1000) };
  });
}

// ---------------------------------------------------------------- output

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

function fmtPct(n: number): string {
  return Number.isFinite(n) ? `${n.toFixed(0)}%` : 'n/a';
}

function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

interface Summary {
  variant: Variant;
  bestRate: number | null;
  bestDeliveredMsgsPerSec: number | null;
  peakDeliveredMsgsPerSec: number;
  ratioVsBare: number | null;
  peakRatioVsBare: number | null;
}

function summarise(results: VariantResult[]): Summary[] {
  const summaries = results.map((r): Summary => {
    const passing = r.rows.filter((row) => row.pass);
    const best = passing.reduce<StepRow | null>((b, row) => (b === null || row.rate > b.rate ? row : b), null);
    return {
      variant: r.variant,
      bestRate: best?.rate ?? null,
      bestDeliveredMsgsPerSec: best?.deliveredMsgsPerSec ?? null,
      peakDeliveredMsgsPerSec: Math.max(0, ...r.rows.map((row) => row.deliveredMsgsPerSec)),
      ratioVsBare: null,
      peakRatioVsBare: null,
    };
  });
  const bare = summaries.find((s) => s.variant === 'bare');
  for (const s of summaries) {
    if (bare?.bestDeliveredMsgsPerSec && s.bestDeliveredMsgsPerSec !== null) s.ratioVsBare = s.bestDeliveredMsgsPerSec / bare.bestDeliveredMsgsPerSec;
    if (bare?.peakDeliveredMsgsPerSec) s.peakRatioVsBare = s.peakDeliveredMsgsPerSec / bare.peakDeliveredMsgsPerSec;
  }
  return summaries;
}

function markdown(results: VariantResult[], summaries: Summary[], memory: MemoryResult[], resume: ResumeSummary | null, env: Record<string, string | number>): string {
  const out: string[] = [];
  out.push(`### Fan-out: ${CLIENTS} Socket.IO clients on one topic (${env.cpus} cores, Node ${env.node}, socket.io ${env.socketio}, all on 127.0.0.1)`);
  out.push('');
  out.push(`Each step: ${WARMUP_S} s warm-up + ${STEP_S} s measured. Latency = client receipt - server publish (high-res clock, matched by correlation_id). Pass = p99 <= ${P99_LIMIT_MS} ms and >= ${DELIVERY_LIMIT * 100}% delivered.`);
  out.push('');
  out.push(
    `Variants: **ours** = the real system (ingest.submit -> validate -> project -> in-memory store -> topic feed -> room broadcast on /market), so its latency includes ingest; ` +
      (VARIANTS.includes('ours/batch') ? `**ours/batch** = the same with \`batch_size: ${BATCH}\` on subscribe (a batch that holds one envelope goes out as a plain delta, so low rates look like **ours**); ` : '') +
      `**bare** = a plain Socket.IO server doing \`io.emit('delta', envelope)\` with the same envelope shape. Delivered msg/s counts envelopes received inside the measured window (so it can exceed the target while a backlog drains).`,
  );
  out.push('');
  out.push(`CPU columns are % of one core (the box has ${env.cpus}); "other" is CPU used on the machine by anything but the benchmark's server and client processes.`);
  out.push('');
  out.push('| Variant | Target ev/s | Expected msg/s | Delivered msg/s | Delivered | p50 ms | p95 ms | p99 ms | max ms | CPU server / clients / other | Server RSS MB | Pass |');
  out.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|');
  for (const r of results) {
    for (const row of r.rows) {
      out.push(
        `| ${row.variant} | ${fmtInt(row.rate)} | ${fmtInt(row.expectedMsgsPerSec)} | ${fmtInt(row.deliveredMsgsPerSec)} | ${row.deliveredPct.toFixed(2)}% | ${fmtMs(row.p50)} | ${fmtMs(row.p95)} | ${fmtMs(row.p99)} | ${fmtMs(row.max)} | ${row.serverCpuPct.toFixed(0)}% / ${row.clientCpuPct.toFixed(0)}% / ${fmtPct(row.otherCpuPct)} | ${row.serverRssMb.toFixed(0)} | ${row.pass ? 'yes' : 'no'}${row.noisy ? '*' : ''} |`,
      );
    }
  }
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.variant}: ${n}`));
  if (results.some((r) => r.rows.some((row) => row.noisy))) notes.unshift(`- \\* other processes on the machine used more than ${NOISY_OTHER_PCT}% of a core during that step (even after re-runs): treat it as noisy`);
  if (notes.length > 0) out.push('', ...notes);
  out.push('');
  out.push('| Variant | Highest passing rate (ev/s) | Delivered msg/s at that rate | vs bare | Peak delivered msg/s (any step) | Peak vs bare |');
  out.push('|---|--:|--:|--:|--:|--:|');
  for (const s of summaries) {
    out.push(
      `| ${s.variant} | ${s.bestRate === null ? 'none' : fmtInt(s.bestRate)} | ${s.bestDeliveredMsgsPerSec === null ? 'n/a' : fmtInt(s.bestDeliveredMsgsPerSec)} | ${s.ratioVsBare === null ? 'n/a' : `${s.ratioVsBare.toFixed(2)}x`} | ${fmtInt(s.peakDeliveredMsgsPerSec)} | ${s.peakRatioVsBare === null ? 'n/a' : `${s.peakRatioVsBare.toFixed(2)}x`} |`,
    );
  }
  if (memory.length > 0) {
    out.push('');
    out.push('| Server | Idle connections | RSS before -> after (MB) | RSS per connection | heapUsed per connection |');
    out.push('|---|--:|--:|--:|--:|');
    for (const m of memory) {
      out.push(`| ${m.server === 'ours' ? 'ours (/market)' : 'bare Socket.IO'} | ${fmtInt(m.connections)} | ${m.rssBeforeMb.toFixed(1)} -> ${m.rssAfterMb.toFixed(1)} | ${m.rssKbPerConn.toFixed(1)} KB | ${m.heapKbPerConn.toFixed(1)} KB |`);
    }
  }
  if (resume) {
    out.push('');
    const runs = resume.runs.map((r) => fmtMs(r.allMs)).join(' / ');
    const ok = resume.runs.every((r) => r.contiguous && r.received === resume.entries && !r.snapshot);
    out.push(
      `Resume: a client subscribing with resume_from_seq = head - ${fmtInt(resume.entries)}${RESUME_BATCH > 1 ? ` and batch_size ${RESUME_BATCH}` : ' (no batching)'} received all ${fmtInt(resume.entries)} deltas in ${fmtMs(resume.medianMs)} ms median (runs: ${runs} ms; ~${fmtInt(resume.entriesPerSec)} entries/s)${ok ? ', gap-free' : ', WITH PROBLEMS (see JSON)'}.`,
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = Date.now();
  const socketioVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'socket.io', 'package.json'), 'utf8')) as { version: string }).version;
  const env = { node: process.versions.node, socketio: socketioVersion, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memGb: Math.round(totalmem() / 2 ** 30) };
  console.log(
    `BondX Stream fan-out benchmark: ${CLIENTS} clients, rates ${RATES.join(',')} ev/s, variants ${VARIANTS.join(', ')}${VARIANTS.includes('ours/batch') ? ` (batch_size ${BATCH})` : ''}, ` +
      `${CLIENT_PROCS} client process(es); ${env.cpus} x ${env.cpu}`,
  );
  const idle0 = machineCpu();
  await sleep(1000);
  const idleBusy = machineBusyPct(idle0, machineCpu(), env.cpus);
  console.log(`Machine load before start: ${fmtPct(idleBusy)} of one core busy${idleBusy > 20 ? ' -- WARNING: other processes are using CPU; results will be distorted' : ''}`);
  const results = await runFanOut();
  const memory: MemoryResult[] = [];
  if (IDLE > 0) {
    memory.push(await runIdleMemory('ours'));
    memory.push(await runIdleMemory('bare'));
  }
  const resume = RESUME > 0 ? await runResume() : null;
  const summaries = summarise(results);
  for (const s of summaries) {
    console.log(
      `[summary] ${s.variant}: highest passing rate ${s.bestRate ?? 'none'} ev/s, ${s.bestDeliveredMsgsPerSec === null ? 'n/a' : fmtInt(s.bestDeliveredMsgsPerSec)} msg/s delivered` +
        (s.ratioVsBare === null ? '' : `, ${s.ratioVsBare.toFixed(2)}x bare`),
    );
  }
  const table = markdown(results, summaries, memory, resume, env);
  console.log(`\n${table}\n`);
  const file = opts.out ?? join(HERE, 'results', 'latest.json');
  mkdirSync(dirname(file), { recursive: true });
  const config = { clients: CLIENTS, rates: RATES, batch: BATCH, variants: VARIANTS, warmupS: WARMUP_S, stepS: STEP_S, drainS: DRAIN_S, idle: IDLE, resume: RESUME, clientProcs: CLIENT_PROCS };
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), durationS: (Date.now() - t0) / 1000, env, machineBusyBeforePct: idleBusy, config, results, summaries, memory, resume, markdown: table }, null, 2)}\n`);
  console.log(`Results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

main().catch((err: unknown) => {
  console.error(err);
  killAll();
  process.exit(1);
});
