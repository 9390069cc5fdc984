import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { entryEnvelope } from '../src/gateway/envelope.js';
import type { Envelope } from '../src/protocol/messages.js';
import { BENCH_TOPIC, clockOffset, hrNow, LatencyHistogram, machineBusyPct, machineCpu, RpcClient, sleep, type EndStepArgs, type QuoteEventShape, type StepStats } from './shared.js';

/**
 * Parent-side helpers of the single-purpose benchmarks (adapter-cost, compression, slow-clients):
 * client child processes, a paced event driver, one measured step over any number of client
 * children, the quote envelope, formatting and the results file. The server side runs in the parent.
 */

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, '..');
const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');

// ---------------------------------------------------------------- child processes

export interface Child {
  name: string;
  proc: ChildProcess;
  rpc: RpcClient;
}

const children = new Set<ChildProcess>();

/** Starts `bench/<file>` under tsx with an IPC channel (it answers through serveRpc). */
export function startChild(name: string, file: string, nodeFlags: string[] = []): Child {
  const proc = spawn(TSX, [...nodeFlags, join(BENCH_DIR, file)], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return { name, proc, rpc: new RpcClient(name, proc) };
}

/** Disconnects the IPC channel (children exit on it), then kills what is still alive after 5 s. */
export async function stopChild(child: Child): Promise<void> {
  const { proc } = child;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  if (proc.connected) proc.disconnect();
  await Promise.race([exited, sleep(5_000)]);
  if (proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGKILL');
    await exited;
  }
}

/** Kills every child this process started (on errors and Ctrl-C). */
export function killChildren(): void {
  for (const proc of children) if (proc.exitCode === null) proc.kill('SIGKILL');
}

/** Runs `main`, printing a failure and killing the children on error; exits when done (open handles or not). */
export function runMain(main: () => Promise<void>): void {
  process.on('SIGINT', () => {
    killChildren();
    process.exit(130);
  });
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      killChildren();
      process.exit(1);
    },
  );
}

/** A client child plus its clock offset to this process (child − parent, ms). */
export interface ClientGroup {
  child: Child;
  shift: number;
}

export async function clientGroup(child: Child): Promise<ClientGroup> {
  return { child, shift: (await clockOffset(child.rpc)).offset };
}

// ---------------------------------------------------------------- driver and one measured step

export interface PaceResult {
  published: number;
  /** Publish time (hrNow) of event n = index. */
  publishTimes: number[];
  startedAt: number;
  endedAt: number;
  /** Largest backlog of due-but-unpublished events (the publisher's own saturation shows here). */
  maxBehind: number;
}

/** Calls `emit(n)` `rate` times a second for `durationMs`, on a 1 ms timer catching up on whatever fell due. */
export async function pace(rate: number, durationMs: number, emit: (n: number) => void): Promise<PaceResult> {
  const total = Math.round((rate * durationMs) / 1000);
  const publishTimes = new Array<number>(total);
  const startedAt = hrNow();
  let n = 0;
  let maxBehind = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((hrNow() - startedAt) * rate) / 1000) + 1);
      maxBehind = Math.max(maxBehind, due - n);
      while (n < due) {
        publishTimes[n] = hrNow();
        emit(n);
        n++;
      }
      if (n >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  return { published: n, publishTimes, startedAt, endedAt: hrNow(), maxBehind };
}

export interface StepTiming {
  warmupS: number;
  stepS: number;
  /** Longest wait after the last publish for every client to have every event. */
  drainS: number;
}

export interface StepMeasure {
  rate: number;
  clients: number;
  published: number;
  achievedRate: number;
  expected: number;
  delivered: number;
  deliveredPct: number;
  /** Envelopes of the step received inside the measured window, per second. */
  deliveredMsgsPerSec: number;
  latency: LatencyHistogram;
  /** Per client child, in the order given. */
  perGroup: StepStats[];
  /** This (server) process's CPU over the step including the drain, % of one core. */
  serverCpuPct: number;
  /** This process's CPU time over the step including the drain (ms). */
  serverCpuMs: number;
  clientCpuPct: number;
  /** Machine-wide busy CPU not used by this process or the client children (other work on the box), % of one core. */
  otherCpuPct: number;
  elapsedMs: number;
  driverMaxBehind: number;
}

let stepCounter = 0;

/**
 * One step: every group begins recording, `emit(step, n)` is paced at `rate` for warm-up + measured
 * time, then the clients get up to `drainS` to receive everything; latency = receipt − publish over
 * the events published after the warm-up. Client children answer beginStep/progress/clients/endStep.
 */
export async function measureStep(groups: ClientGroup[], rate: number, timing: StepTiming, emit: (step: number, n: number) => void): Promise<StepMeasure> {
  const step = ++stepCounter;
  await Promise.all(groups.map((g) => g.child.rpc.call('beginStep', { step })));
  const cpu0 = process.cpuUsage();
  const machine0 = machineCpu();
  const t0 = hrNow();
  const run = await pace(rate, (timing.warmupS + timing.stepS) * 1000, (n) => emit(step, n));
  const windowStart = run.startedAt + timing.warmupS * 1000;
  const windowEnd = run.startedAt + (timing.warmupS + timing.stepS) * 1000;
  let windowFrom = run.publishTimes.findIndex((t) => t >= windowStart);
  if (windowFrom < 0) windowFrom = run.published;
  const received = async () => (await Promise.all(groups.map((g) => g.child.rpc.call<{ received: number }>('progress')))).reduce((a, p) => a + p.received, 0);
  const clientsNow = await Promise.all(groups.map((g) => g.child.rpc.call<{ clients: number }>('clients')));
  const want = run.published * clientsNow.reduce((a, c) => a + c.clients, 0);
  const drainUntil = hrNow() + timing.drainS * 1000;
  while ((await received()) < want && hrNow() < drainUntil) await sleep(50);
  const elapsedMs = hrNow() - t0;
  const cpu = process.cpuUsage(cpu0);
  const machine1 = machineCpu();
  const perGroup = await Promise.all(
    groups.map((g) =>
      g.child.rpc.call<StepStats>('endStep', { publishTimes: run.publishTimes, clockShift: g.shift, windowFrom, windowTo: run.published, windowStart, windowEnd } satisfies EndStepArgs, 60_000),
    ),
  );
  const latency = new LatencyHistogram();
  for (const st of perGroup) latency.merge(st.latency);
  const sum = (f: (st: StepStats) => number) => perGroup.reduce((a, st) => a + f(st), 0);
  const expected = sum((st) => st.expected);
  const delivered = sum((st) => st.delivered);
  const serverCpuMs = (cpu.user + cpu.system) / 1000;
  const serverCpuPct = (100 * serverCpuMs) / elapsedMs;
  const clientCpuPct = (100 * sum((st) => st.cpuMs)) / elapsedMs;
  return {
    rate,
    clients: sum((st) => st.clients),
    published: run.published,
    achievedRate: run.published / ((run.endedAt - run.startedAt) / 1000),
    expected,
    delivered,
    deliveredPct: expected > 0 ? (100 * Math.min(expected, delivered)) / expected : Number.NaN,
    deliveredMsgsPerSec: sum((st) => st.inWindowMsgs) / timing.stepS,
    latency,
    perGroup,
    serverCpuPct,
    serverCpuMs,
    clientCpuPct,
    otherCpuPct: Math.max(0, machineBusyPct(machine0, machine1, cpus().length) - serverCpuPct - clientCpuPct),
    elapsedMs,
    driverMaxBehind: run.maxBehind,
  };
}

/**
 * measureStep, re-run (after a quiesce) while other processes on the machine used more than
 * `maxOtherPct` of a core during it, within a retry budget shared by the whole run; the result says
 * whether it stayed noisy.
 */
export async function measureQuietStep(
  groups: ClientGroup[],
  rate: number,
  timing: StepTiming,
  emit: (step: number, n: number) => void,
  budget: { retries: number; maxOtherPct: number; log: (line: string) => void },
): Promise<StepMeasure & { noisy: boolean; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const m = await measureStep(groups, rate, timing, emit);
    const noisy = m.otherCpuPct > budget.maxOtherPct;
    if (!noisy || budget.retries <= 0) return { ...m, noisy, attempts };
    budget.retries--;
    budget.log(`step at ${rate} ev/s disturbed (other processes used ${m.otherCpuPct.toFixed(0)}% of a core): re-running it (${budget.retries} re-runs left)`);
    await quiesce(groups);
  }
}

/** Waits (up to `maxMs`) until the clients' receive counters stop moving: a backlog has cleared. */
export async function quiesce(groups: ClientGroup[], maxMs = 5_000, stillMs = 300): Promise<void> {
  const until = hrNow() + maxMs;
  let last = -1;
  let since = hrNow();
  while (hrNow() < until) {
    const now = (await Promise.all(groups.map((g) => g.child.rpc.call<{ received: number }>('progress')))).reduce((a, p) => a + p.received, 0);
    if (now !== last) {
      last = now;
      since = hrNow();
    } else if (hrNow() - since >= stillMs) return;
    await sleep(50);
  }
}

/**
 * Waits (up to `maxS`) for the machine to be quiet (< `maxBusyPct` of one core busy over a second),
 * since the benchmarks share 2 cores with whatever else runs; returns the last load seen.
 */
export async function waitForQuietMachine(log: (line: string) => void, maxS = 20, maxBusyPct = 30): Promise<number> {
  const until = Date.now() + maxS * 1000;
  for (let warned = false; ; warned = true) {
    const a = machineCpu();
    await sleep(1000);
    const busy = machineBusyPct(a, machineCpu(), cpus().length);
    if (!(busy > maxBusyPct)) return busy;
    if (Date.now() >= until) {
      log(`WARNING: the machine is still ${busy.toFixed(0)}% busy (of one core) before starting: figures will be distorted`);
      return busy;
    }
    if (!warned) log(`machine ${busy.toFixed(0)}% busy (of one core) by other processes; waiting up to ${maxS} s for it to settle`);
  }
}

export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(h: LatencyHistogram): Percentiles {
  return { p50: h.percentile(50), p95: h.percentile(95), p99: h.percentile(99), max: h.count > 0 ? h.max : Number.NaN };
}

// ---------------------------------------------------------------- what is published

/** The envelope our gateway sends for a quote: entryEnvelope over the l1 payload the prices reducer emits. */
export function quoteEnvelope(event: QuoteEventShape, seq: number, epoch = 'bench'): Envelope {
  return entryEnvelope({
    topic: BENCH_TOPIC,
    epoch,
    seq,
    type: 'delta',
    ts: new Date().toISOString(),
    event_ts: event.ts,
    event_id: event.event_id,
    payload: {
      kind: 'l1',
      bid: event.bid,
      ask: event.ask,
      bid_size: event.bid_size,
      ask_size: event.ask_size,
      bid_yield: null,
      ask_yield: null,
      mid: Math.round(((event.bid + event.ask) / 2) * 1e6) / 1e6,
      spread: Math.round((event.ask - event.bid) * 1e6) / 1e6,
      ts: event.ts,
    },
  });
}

// ---------------------------------------------------------------- memory

let gcFn: (() => void) | undefined;

/** A full GC in this process (tsx starts us without --expose-gc, so the flag is set at run time). */
export async function fullGc(): Promise<void> {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    gcFn();
    await sleep(50);
  }
}

// ---------------------------------------------------------------- output

export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 10) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

export function fmtInt(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

export function fmtPct(n: number, digits = 0): string {
  return Number.isFinite(n) ? `${n.toFixed(digits)}%` : 'n/a';
}

/** A markdown table (first column left-aligned, the rest right-aligned). */
export function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '--:'));
  return [header, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function machine(): { node: string; cpus: number; cpu: string } {
  return { node: process.versions.node, cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown' };
}

/** Writes `bench/results/<name>.json` (NaN and Infinity become null) and returns its path. */
export function writeResults(name: string, data: Record<string, unknown>): string {
  const file = join(BENCH_DIR, 'results', `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), env: machine(), ...data }, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`);
  return file;
}
