import { sleep } from '../../test/support/waits.js';
import { clockOffset, type Child } from './rpc.js';
import { hrNow, LatencyHistogram, machineBusyPct, machineCpu, machineStealPct, ownCpuMs, percentiles, type HistogramJson, type Percentiles } from './stats.js';

/**
 * One measured step of a fan-out benchmark, the same for every benchmark: events are published at a
 * paced rate, client children record the receipt time of every delivered envelope by the event number
 * in its correlation id, and the parent merges their statistics once it hands over the publish times.
 */

// ---------------------------------------------------------------- event numbers

/** `b<step>-<n>`: the event_id (so the correlation id a delivered envelope carries back) of event n of a step. */
export function stepEventId(step: number, n: number): string {
  return `${stepPrefix(step)}${n}`;
}

export function stepPrefix(step: number): string {
  return `b${step}-`;
}

/** Event n of the step whose prefix is given, or undefined for anything else. */
export function eventNumber(id: unknown, prefix: string): number | undefined {
  if (typeof id !== 'string' || prefix === '' || !id.startsWith(prefix)) return undefined;
  const n = Number(id.slice(prefix.length));
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

// ---------------------------------------------------------------- pacing

export interface PaceResult {
  published: number;
  /** Publish time (hrNow) of event n = index. */
  publishTimes: number[];
  startedAt: number;
  endedAt: number;
  /** Largest backlog of due-but-unpublished events (the publisher's own saturation shows here). */
  maxBehind: number;
}

/**
 * Calls `emit(n, dueAt)` `rate` times a second for `durationMs`, on a 1 ms timer catching up on
 * whatever fell due, each event stamped just before its emit; `flush` (awaited) ends each catch-up,
 * for publishers that send what fell due as one batch.
 */
export async function pace(rate: number, durationMs: number, emit: (n: number, dueAt: number) => void, flush?: () => Promise<void>): Promise<PaceResult> {
  const total = Math.round((rate * durationMs) / 1000);
  const publishTimes = new Array<number>(total);
  const startedAt = hrNow();
  let n = 0;
  let maxBehind = 0;
  while (n < total) {
    const due = Math.min(total, Math.floor(((hrNow() - startedAt) * rate) / 1000) + 1);
    maxBehind = Math.max(maxBehind, due - n);
    for (; n < due; n++) {
      publishTimes[n] = hrNow();
      emit(n, startedAt + (n * 1000) / rate);
    }
    await flush?.();
    if (n < total) await sleep(1);
  }
  return { published: n, publishTimes, startedAt, endedAt: hrNow(), maxBehind };
}

// ---------------------------------------------------------------- connecting

export interface ConnectResult {
  connected: number;
  failed: number;
  firstError: string | null;
  ms: number;
}

/** Opens `count` connections `wave` at a time (a burst of thousands trips the kernel's accept backlog). */
export async function connectInWaves(count: number, openOne: (i: number) => Promise<unknown>, wave = 50): Promise<ConnectResult> {
  const t0 = hrNow();
  let connected = 0;
  let failed = 0;
  let firstError: string | null = null;
  for (let i = 0; i < count; i += wave) {
    const results = await Promise.allSettled(Array.from({ length: Math.min(wave, count - i) }, (_, k) => openOne(i + k)));
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

/** Several children's connect results as one (they connected in parallel). */
export function combined(results: ConnectResult[]): ConnectResult {
  return {
    connected: results.reduce((n, r) => n + r.connected, 0),
    failed: results.reduce((n, r) => n + r.failed, 0),
    firstError: results.find((r) => r.firstError !== null)?.firstError ?? null,
    ms: Math.max(0, ...results.map((r) => r.ms)),
  };
}

/** `total` split into `parts` near-equal shares. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

// ---------------------------------------------------------------- client side: recording a step

/** An envelope as a benchmark client reads it off the wire. */
export interface WireEnvelope {
  type?: string;
  topic?: string | null;
  seq?: number | null;
  ts?: string;
  correlation_id?: string | null;
  payload?: unknown;
  meta?: Record<string, unknown>;
}

export interface EndStepArgs {
  publishTimes: number[];
  /** This client process's clock minus the publisher's clock (ms), subtracted from every receipt time. */
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

/**
 * Client-side recording of one step (client children: socket.io in `clients.ts`, plain WebSocket in
 * `ws-clients.ts`): the receipt time of every delivered envelope of the current step, keyed by event
 * number, turned into latency/delivery statistics once the parent hands over the publish times.
 */
export class StepRecorder {
  private prefix = '';
  // Parallel growable arrays: event n and receipt time of each recorded envelope.
  private recN = new Int32Array(1 << 18);
  private recT = new Float64Array(1 << 18);
  private len = 0;
  private batchFrames = 0;
  private deltaFrames = 0;
  private cpuAtStart = ownCpuMs();
  private startedAt = hrNow();

  begin(step: number): void {
    this.prefix = stepPrefix(step);
    this.len = 0;
    this.batchFrames = 0;
    this.deltaFrames = 0;
    this.cpuAtStart = ownCpuMs();
    this.startedAt = hrNow();
  }

  /** Envelopes of the current step received so far (warm-up included). */
  get received(): number {
    return this.len;
  }

  /** A `delta` frame. */
  delta(env: WireEnvelope, t = hrNow()): void {
    this.deltaFrames++;
    this.record(env, t);
  }

  /** A `batch` frame: `{type:'batch', payload: Envelope[]}`; each inner envelope counts. */
  batch(env: WireEnvelope, t = hrNow()): void {
    this.batchFrames++;
    for (const inner of batchItems(env)) this.record(inner, t);
  }

  private record(env: WireEnvelope, t: number): void {
    const n = eventNumber(env.correlation_id, this.prefix);
    if (n === undefined) return;
    if (this.len === this.recN.length) {
      const nN = new Int32Array(this.recN.length * 2);
      nN.set(this.recN);
      this.recN = nN;
      const nT = new Float64Array(this.recT.length * 2);
      nT.set(this.recT);
      this.recT = nT;
    }
    this.recN[this.len] = n;
    this.recT[this.len] = t;
    this.len++;
  }

  /** Statistics for `clients` recording connections; recording goes on until the next begin(). */
  end(args: EndStepArgs, clients: number): StepStats {
    const elapsedMs = hrNow() - this.startedAt;
    const { publishTimes, windowFrom, windowTo, clockShift } = args;
    // Receipt times are on this process's clock; the window bounds and publish times on the publisher's.
    const windowStart = args.windowStart + clockShift;
    const windowEnd = args.windowEnd + clockShift;
    const span = Math.max(0, windowTo - windowFrom);
    const perEvent = new Uint32Array(span);
    const histogram = new LatencyHistogram();
    let delivered = 0;
    let inWindowMsgs = 0;
    for (let i = 0; i < this.len; i++) {
      const n = this.recN[i] as number;
      const t = this.recT[i] as number;
      if (t >= windowStart && t < windowEnd) inWindowMsgs++;
      if (n < windowFrom || n >= windowTo) continue;
      const sent = publishTimes[n];
      if (sent === undefined) continue;
      perEvent[n - windowFrom] = (perEvent[n - windowFrom] ?? 0) + 1;
      histogram.add(t - clockShift - sent);
      delivered++;
    }
    // Duplicates per (client, event) are not visible in the aggregate: count receipts per event instead.
    let duplicates = 0;
    for (const c of perEvent) if (c > clients) duplicates += c - clients;
    return {
      received: this.len,
      clients,
      expected: span * clients,
      delivered,
      inWindowMsgs,
      windowSec: (windowEnd - windowStart) / 1000,
      latency: histogram.toJson(),
      batchFrames: this.batchFrames,
      deltaFrames: this.deltaFrames,
      duplicates,
      cpuMs: ownCpuMs() - this.cpuAtStart,
      elapsedMs,
    };
  }
}

/** The envelopes a `batch` frame carries. */
export function batchItems(env: WireEnvelope): WireEnvelope[] {
  return Array.isArray(env.payload) ? (env.payload as WireEnvelope[]) : [];
}

// ---------------------------------------------------------------- parent side: one measured step

/** A client child plus its clock offset to the publisher (child − publisher, ms). */
export interface ClientGroup {
  child: Child;
  shift: number;
}

/** `publisherOffset`: the publisher's clock minus ours, when it is another child (0: it is this process). */
export async function clientGroup(child: Child, publisherOffset = 0): Promise<ClientGroup> {
  return { child, shift: (await clockOffset(child.rpc)).offset - publisherOffset };
}

/** Who publishes a step's events: this process (`localPublisher`) or a server child. */
export interface Publisher {
  /** Publishes event n of `step` for n = 0… at `rate` for `durationMs` (publish times on the publisher's clock). */
  run(step: number, rate: number, durationMs: number): Promise<PaceResult>;
  /** CPU time the publishing process has used so far, ms. */
  cpuMs(): Promise<number>;
}

export function localPublisher(emit: (step: number, n: number) => void): Publisher {
  return { run: (step, rate, durationMs) => pace(rate, durationMs, (n) => emit(step, n)), cpuMs: async () => ownCpuMs() };
}

export interface StepTiming {
  warmupS: number;
  stepS: number;
  /** Longest wait after the last publish for every client to have every event. */
  drainS: number;
}

export interface StepMeasure {
  step: number;
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
  received: number;
  batchFrames: number;
  deltaFrames: number;
  duplicates: number;
  /** The publishing process's CPU over the step including the drain, % of one core. */
  serverCpuPct: number;
  /** The publishing process's CPU time over the step including the drain (ms). */
  serverCpuMs: number;
  clientCpuPct: number;
  /** Machine-wide busy CPU not used by the publisher or the client children (other work on the box), % of one core. */
  otherCpuPct: number;
  /** Of that, hypervisor steal (the VM's CPUs given to other guests), % of one core. */
  stealPct: number;
  elapsedMs: number;
  driverMaxBehind: number;
}

let stepCounter = 0;

/** A step number no other step of this run has (the correlation ids of its events are its own). */
export function nextStep(): number {
  return ++stepCounter;
}

/** Envelopes of the current step the groups' clients have received so far. */
export async function received(groups: ClientGroup[]): Promise<number> {
  return (await Promise.all(groups.map((g) => g.child.rpc.call<{ received: number }>('progress')))).reduce((a, p) => a + p.received, 0);
}

/** Waits (up to `maxMs`) until the groups have received `want` envelopes; returns how many are still missing. */
export async function drain(groups: ClientGroup[], want: number, maxMs: number): Promise<number> {
  const until = hrNow() + maxMs;
  for (;;) {
    const left = Math.max(0, want - (await received(groups)));
    if (left === 0 || hrNow() >= until) return left;
    await sleep(50);
  }
}

/**
 * One step: every group begins recording, the publisher publishes at `rate` for warm-up + measured
 * time, then the clients get up to `drainS` to receive everything; latency = receipt − publish over
 * the events published after the warm-up. Client children answer beginStep/progress/clients/endStep.
 */
export async function measureStep(groups: ClientGroup[], rate: number, timing: StepTiming, publisher: Publisher): Promise<StepMeasure> {
  const step = nextStep();
  await Promise.all(groups.map((g) => g.child.rpc.call('beginStep', { step })));
  const cpu0 = await publisher.cpuMs();
  const machine0 = machineCpu();
  const t0 = hrNow();
  const run = await publisher.run(step, rate, (timing.warmupS + timing.stepS) * 1000);
  const windowStart = run.startedAt + timing.warmupS * 1000;
  const windowEnd = run.startedAt + (timing.warmupS + timing.stepS) * 1000;
  let windowFrom = run.publishTimes.findIndex((t) => t >= windowStart);
  if (windowFrom < 0) windowFrom = run.published;
  const clientsNow = await Promise.all(groups.map((g) => g.child.rpc.call<{ clients: number }>('clients')));
  await drain(groups, run.published * clientsNow.reduce((a, c) => a + c.clients, 0), timing.drainS * 1000);
  const elapsedMs = hrNow() - t0;
  const serverCpuMs = (await publisher.cpuMs()) - cpu0;
  const machine1 = machineCpu();
  const perGroup = await Promise.all(
    groups.map((g) =>
      g.child.rpc.call<StepStats>('endStep', { publishTimes: run.publishTimes, clockShift: g.shift, windowFrom, windowTo: run.published, windowStart, windowEnd } satisfies EndStepArgs, 60_000),
    ),
  );
  const latency = LatencyHistogram.of(...perGroup.map((st) => st.latency));
  const sum = (f: (st: StepStats) => number) => perGroup.reduce((a, st) => a + f(st), 0);
  const expected = sum((st) => st.expected);
  const delivered = sum((st) => st.delivered);
  const serverCpuPct = (100 * serverCpuMs) / elapsedMs;
  const clientCpuPct = (100 * sum((st) => st.cpuMs)) / elapsedMs;
  return {
    step,
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
    received: sum((st) => st.received),
    batchFrames: sum((st) => st.batchFrames),
    deltaFrames: sum((st) => st.deltaFrames),
    duplicates: sum((st) => st.duplicates),
    serverCpuPct,
    serverCpuMs,
    clientCpuPct,
    otherCpuPct: Math.max(0, machineBusyPct(machine0, machine1) - serverCpuPct - clientCpuPct),
    stealPct: machineStealPct(machine0, machine1),
    elapsedMs,
    driverMaxBehind: run.maxBehind,
  };
}

/** What every benchmark reports about a step, whatever else it measures. */
export interface StepFigures {
  clients: number;
  deliveredMsgsPerSec: number;
  deliveredPct: number;
  latency: Percentiles;
  serverCpuPct: number;
  clientCpuPct: number;
  otherCpuPct: number;
  /** Of the other load, hypervisor steal. */
  stealPct: number;
}

export function figures(m: StepMeasure): StepFigures {
  return {
    clients: m.clients,
    deliveredMsgsPerSec: m.deliveredMsgsPerSec,
    deliveredPct: m.deliveredPct,
    latency: percentiles(m.latency),
    serverCpuPct: m.serverCpuPct,
    clientCpuPct: m.clientCpuPct,
    otherCpuPct: m.otherCpuPct,
    stealPct: m.stealPct,
  };
}

export interface RetryBudget {
  /** Re-runs left for the whole run (shared by every step). */
  retries: number;
  /** A step during which other processes used more than this (% of one core) is disturbed. */
  maxOtherPct: number;
  log: (line: string) => void;
}

/**
 * measureStep, re-run (after a quiesce) while other processes on the machine used more than
 * `maxOtherPct` of a core during it, within a retry budget shared by the whole run; the result is the
 * last attempt (the one the clients' recorders hold), and says whether it stayed noisy.
 */
export async function measureQuietStep(groups: ClientGroup[], rate: number, timing: StepTiming, publisher: Publisher, budget: RetryBudget): Promise<StepMeasure & { noisy: boolean; attempts: number }> {
  for (let attempts = 1; ; attempts++) {
    const m = await measureStep(groups, rate, timing, publisher);
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
    const now = await received(groups);
    if (now !== last) {
      last = now;
      since = hrNow();
    } else if (hrNow() - since >= stillMs) return;
    await sleep(50);
  }
}
