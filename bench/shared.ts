import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadConfig, type Config } from '../src/config/config.js';

/**
 * Shared by the benchmark's three processes (parent `run.ts`, `server.ts`, `clients.ts`): a tiny
 * request/response protocol over the Node IPC channel, the high-resolution clock, and the quote events.
 */

export const BENCH_SECRET = 'bench-secret-with-enough-entropy-0123456789';
export const BENCH_ISIN = 'IN0020230085';
export const BENCH_TOPIC = `prices.${BENCH_ISIN}`;
export const HOST = '127.0.0.1';

/** Wall-clock epoch milliseconds with sub-millisecond resolution; comparable across processes on one machine. */
export function hrNow(): number {
  return performance.timeOrigin + performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `b<step>-<n>`: the correlation id a delivered envelope carries back, so latency can be matched per event. */
export function eventId(step: number, n: number): string {
  return `b${step}-${n}`;
}

export function quoteEvent(step: number, n: number, isin: string = BENCH_ISIN): QuoteEventShape {
  const wiggle = (n % 50) / 1000;
  return {
    event_id: eventId(step, n),
    type: 'quote',
    ts: new Date().toISOString(),
    isin,
    bid: Math.round((99.5 + wiggle) * 1000) / 1000,
    ask: Math.round((99.6 + wiggle) * 1000) / 1000,
    bid_size: 5_000_000,
    ask_size: 5_000_000,
  };
}

export interface QuoteEventShape {
  event_id: string;
  type: 'quote';
  ts: string;
  isin: string;
  bid: number;
  ask: number;
  bid_size: number;
  ask_size: number;
}

// ---------------------------------------------------------------- IPC request/response

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Request {
  rpc: 'req';
  id: number;
  cmd: string;
  args: Json;
}

interface Response {
  rpc: 'res';
  id: number;
  ok: boolean;
  result?: Json;
  error?: string;
}

function isResponse(m: unknown): m is Response {
  return typeof m === 'object' && m !== null && (m as { rpc?: unknown }).rpc === 'res';
}

function isRequest(m: unknown): m is Request {
  return typeof m === 'object' && m !== null && (m as { rpc?: unknown }).rpc === 'req';
}

/** Parent side: typed calls into a child started with an IPC channel. */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.on('message', (m: unknown) => {
      if (!isResponse(m)) return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result ?? null);
      else p.reject(new Error(`${name}: ${m.error ?? 'failed'}`));
    });
    child.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during a call`));
      this.pending.clear();
    });
  }

  call<T>(cmd: string, args: Json = null, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: '${cmd}' timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const req: Request = { rpc: 'req', id, cmd, args };
      this.child.send(req);
    });
  }
}

export type Handler = (args: never) => Promise<unknown> | unknown;

/** Child side: answers the parent's calls; exits when the parent goes away. */
export function serveRpc(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('must be started with an IPC channel (by bench/run.ts)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: unknown) => {
    if (!isRequest(m)) return;
    const handler = m.cmd === '__clock' ? () => hrNow() : handlers[m.cmd];
    const reply = (res: Response) => {
      if (process.connected) process.send?.(res);
    };
    if (!handler) {
      reply({ rpc: 'res', id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    Promise.resolve()
      .then(() => (handler as (a: Json) => unknown)(m.args))
      .then(
        (result) => reply({ rpc: 'res', id: m.id, ok: true, result: (result ?? null) as Json }),
        (err: unknown) => reply({ rpc: 'res', id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
      );
  });
}

// ---------------------------------------------------------------- shapes exchanged over IPC

export type Variant = 'ours' | 'ours/batch' | 'bare';

export interface StartArgs {
  kind: 'ours' | 'bare';
  maxConnections: number;
  historyMaxLen: number;
}

export interface StartResult {
  url: string;
  /** For `ours`: a valid JWT (bare needs none). */
  token: string | null;
  namespace: string;
}

export interface RunArgs {
  step: number;
  rate: number;
  durationMs: number;
}

export interface RunResult {
  published: number;
  /** Publish time (hrNow) per event n = index. */
  publishTimes: number[];
  startedAt: number;
  endedAt: number;
  /** Largest backlog of due-but-unpublished events the driver saw (server saturation shows here). */
  maxBehind: number;
  cpuMs: number;
  rssMb: number;
  heapUsedMb: number;
}

export interface MemStats {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  gc: boolean;
}

export interface ConnectArgs {
  url: string;
  namespace: string;
  token: string | null;
  count: number;
  /** Subscribe after connecting (our gateway); omitted for bare or idle clients. */
  subscribe: { topic: string; batch_size: number | null } | null;
}

export interface ConnectResult {
  connected: number;
  failed: number;
  firstError: string | null;
  ms: number;
}

export interface EndStepArgs {
  publishTimes: number[];
  /** This client process's clock minus the server process's clock (ms), subtracted from every latency. */
  clockShift: number;
  /** Events n in [windowFrom, windowTo) are measured (those published after warm-up). */
  windowFrom: number;
  windowTo: number;
  windowStart: number;
  windowEnd: number;
}

export interface StepStats {
  /** Every envelope of the step received (warm-up included). */
  received: number;
  clients: number;
  expected: number;
  delivered: number;
  /** Messages received (any event of the step) with receipt time inside the measurement window. */
  inWindowMsgs: number;
  windowSec: number;
  latency: HistogramJson;
  batchFrames: number;
  deltaFrames: number;
  duplicates: number;
  /** CPU time of the client process between beginStep and endStep, and that interval. */
  cpuMs: number;
  elapsedMs: number;
}

export interface ResumeArgs {
  url: string;
  namespace: string;
  token: string;
  topic: string;
  fromSeq: number;
  expected: number;
  /** batch_size on the resuming subscribe (0: one frame per delta). */
  batchSize: number;
}

export interface ResumeResult {
  ackMs: number;
  allMs: number;
  received: number;
  contiguous: boolean;
  firstSeq: number | null;
  lastSeq: number | null;
  snapshot: boolean;
}

// ---------------------------------------------------------------- latency histogram

export interface HistogramJson {
  /** [bucket index, count] pairs, bucket i covering latencies near 1.01^i microseconds. */
  buckets: [number, number][];
  count: number;
  min: number;
  max: number;
}

const LOG_BASE = Math.log(1.01);

/**
 * Log-bucketed latency histogram (1 % relative resolution, values in ms), so several client
 * processes' results merge exactly into one set of percentiles.
 */
export class LatencyHistogram {
  private readonly counts = new Map<number, number>();
  count = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  add(ms: number): void {
    const us = Math.max(1, ms * 1000);
    const i = Math.round(Math.log(us) / LOG_BASE);
    this.counts.set(i, (this.counts.get(i) ?? 0) + 1);
    this.count++;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
  }

  merge(json: HistogramJson): void {
    for (const [i, c] of json.buckets) this.counts.set(i, (this.counts.get(i) ?? 0) + c);
    this.count += json.count;
    if (json.count > 0) {
      this.min = Math.min(this.min, json.min);
      this.max = Math.max(this.max, json.max);
    }
  }

  /** The p-th percentile in ms (NaN when empty); the top bucket reports the exact max. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    const sorted = [...this.counts].sort((a, b) => a[0] - b[0]);
    let seen = 0;
    for (const [i, c] of sorted) {
      seen += c;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, Math.exp(i * LOG_BASE) / 1000));
    }
    return this.max;
  }

  toJson(): HistogramJson {
    return { buckets: [...this.counts], count: this.count, min: this.count > 0 ? this.min : 0, max: this.count > 0 ? this.max : 0 };
  }
}

// ---------------------------------------------------------------- clocks and machine load

/**
 * Offset of a child's hrNow() from ours (child - parent, ms), NTP style: the sample with the shortest
 * IPC round trip, assuming the reply was stamped half-way.
 */
export async function clockOffset(rpc: RpcClient, rounds = 25): Promise<{ offset: number; rtt: number }> {
  let best = { offset: 0, rtt: Number.POSITIVE_INFINITY };
  for (let i = 0; i < rounds; i++) {
    const t0 = hrNow();
    const child = await rpc.call<number>('__clock');
    const t1 = hrNow();
    if (t1 - t0 < best.rtt) best = { offset: child - (t0 + t1) / 2, rtt: t1 - t0 };
  }
  return best;
}

/** Machine-wide CPU counters from /proc/stat (Linux), in clock ticks; null elsewhere. */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return null;
  }
}

/** Busy share of the whole machine between two samples, in "% of one core" (2 cores = up to 200 %). */
export function machineBusyPct(a: { busy: number; total: number } | null, b: { busy: number; total: number } | null, cores: number): number {
  if (!a || !b || b.total <= a.total) return Number.NaN;
  return (100 * cores * (b.busy - a.busy)) / (b.total - a.total);
}

/**
 * Configuration of an in-process benchmark system: loopback, silent, no simulator, and admission
 * limits out of the way (every benchmark client is one user on one IP, connecting in bursts).
 */
export function benchConfig(maxConnections: number, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    PORT: '0',
    PROMETHEUS_PORT: '0',
    HOST,
    JWT_SECRET: BENCH_SECRET,
    LOG_LEVEL: 'silent',
    SIMULATOR: 'false',
    WS_MAX_CONNECTIONS: String(maxConnections),
    WS_MAX_CONNECTIONS_PER_USER: String(maxConnections),
    WS_CONNECT_RATE_PER_USER: '1000000',
    WS_CONNECT_RATE_PER_IP: '1000000',
    ...overrides,
  });
}

/** Opens `count` connections 50 at a time (a burst of thousands trips the kernel's accept backlog). */
export async function connectInWaves(count: number, openOne: () => Promise<unknown>): Promise<ConnectResult> {
  const t0 = hrNow();
  let connected = 0;
  let failed = 0;
  let firstError: string | null = null;
  const wave = 50;
  for (let i = 0; i < count; i += wave) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(wave, count - i) }, openOne));
    for (const r of results) {
      if (r.status === 'fulfilled') connected++;
      else {
        failed++;
        firstError ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
      }
    }
  }
  return { connected, failed, firstError, ms: hrNow() - t0 };
}
