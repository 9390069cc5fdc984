import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { sleep } from '../../test/support/waits.js';

/** What the benchmarks measure with: one clock, a mergeable latency histogram, CPU and memory. */

/** Wall-clock epoch milliseconds with sub-millisecond resolution; comparable across processes on one machine. */
export function hrNow(): number {
  return performance.timeOrigin + performance.now();
}

/** CPU time (user + system) this process has used, ms. */
export function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

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

  static of(...jsons: HistogramJson[]): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const json of jsons) h.merge(json);
    return h;
  }

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

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentiles(h: LatencyHistogram): Percentiles {
  return { count: h.count, p50: h.percentile(50), p95: h.percentile(95), p99: h.percentile(99), max: h.count > 0 ? h.max : Number.NaN };
}

/** `steal`: ticks the hypervisor gave this VM's CPUs to others; counted in `busy` (the guest could not run then). */
export type CpuCounters = { busy: number; steal: number; total: number } | null;

/** Machine-wide CPU counters from /proc/stat (Linux), in clock ticks; null elsewhere. */
export function machineCpu(): CpuCounters {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, steal, total: busy + idle + iowait };
  } catch {
    return null;
  }
}

/** Busy share of the whole machine between two samples, in "% of one core" (2 cores = up to 200 %). */
export function machineBusyPct(a: CpuCounters, b: CpuCounters): number {
  if (!a || !b || b.total <= a.total) return Number.NaN;
  return (100 * cpus().length * (b.busy - a.busy)) / (b.total - a.total);
}

/** Hypervisor steal between two samples, in "% of one core": part of what benchmarks report as other load. */
export function machineStealPct(a: CpuCounters, b: CpuCounters): number {
  if (!a || !b || b.total <= a.total) return Number.NaN;
  return (100 * cpus().length * (b.steal - a.steal)) / (b.total - a.total);
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
    const busy = machineBusyPct(a, machineCpu());
    if (!(busy > maxBusyPct)) return busy;
    if (Date.now() >= until) {
      log(`WARNING: the machine is still ${busy.toFixed(0)}% busy (of one core) before starting: figures will be distorted`);
      return busy;
    }
    if (!warned) log(`machine ${busy.toFixed(0)}% busy (of one core) by other processes; waiting up to ${maxS} s for it to settle`);
  }
}

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
