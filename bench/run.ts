import { join } from 'node:path';
import { ROOT } from '../test/support/processes.js';
import { sleep } from '../test/support/waits.js';
import type { ConnectArgs, ResumeArgs, ResumeResult } from './clients.js';
import { DELIVERY_LIMIT_PCT, NOISY_OTHER_PCT, P99_LIMIT_MS, QUIESCE_S } from './lib/criteria.js';
import { int, list, oneOf, parseOptions, retriesOption, timingOf, timingOptions } from './lib/options.js';
import { fmtInt, fmtMs, fmtPct, machine, table, writeResults } from './lib/report.js';
import { clockOffset, runMain, startChild, stopChild, type Child } from './lib/rpc.js';
import { waitForQuietMachine } from './lib/stats.js';
import { clientGroup, combined, drain, figures, measureQuietStep, nextStep, shares, type ClientGroup, type ConnectResult, type Publisher, type StepFigures } from './lib/steps.js';
import { BENCH_TOPIC } from './lib/system.js';
import type { MemStats, RunResult, StartArgs, StartResult } from './server.js';

/**
 * `npm run bench`: fan-out of quote deltas through OUR gateway (with and without batching) next to a
 * bare Socket.IO broadcast of the same envelopes, plus idle-connection memory and resume catch-up.
 * The server runs in one child process (server.ts), the clients in others (clients.ts), all on 127.0.0.1.
 */

type Variant = 'ours' | 'ours/batch' | 'bare';

const opts = parseOptions('npm run bench --', 'Fan-out through our gateway vs a bare Socket.IO broadcast, idle memory per connection, resume catch-up.', {
  // 250 clients in 2 client processes: with 1000 the client processes saturate the 2-core box for every
  // variant, and latency measures the clients rather than the servers (see README, Benchmarks).
  clients: { help: 'subscribed clients per fan-out variant', default: 250, parse: int(1) },
  rates: { help: 'target events/s steps, rising', default: [50, 100, 200, 400, 800, 1600], parse: list(int(1)) },
  batch: { help: 'batch_size of the ours/batch variant; 0 or 1 drops that variant', default: 100, parse: int(0) },
  variants: { help: 'any of ours,ours/batch,bare', default: ['ours', 'ours/batch', 'bare'] as Variant[], parse: list(oneOf<Variant>('ours', 'ours/batch', 'bare')) },
  ...timingOptions({ warmup: 1, step: 3, drain: 3 }),
  idle: { help: 'idle connections for the memory test; 0 skips it', default: 2000, parse: int(0) },
  resume: { help: 'entries to resume for the catch-up test; 0 skips it', default: 10_000, parse: int(0) },
  clientProcs: { help: 'client processes the clients are split over', default: 2, parse: int(1) },
  resumeBatch: { help: 'batch_size of the resuming client; 0 = one frame per delta', default: 100, parse: int(0) },
  deliveries: { help: "our gateway's delivery record (AUDIT_DELIVERIES): on or off, to measure its cost", default: 'on', parse: oneOf('on', 'off') },
  keepGoing: { help: 'keep raising the rate after a variant saturates (default: stop it after 2 saturated steps)', default: false },
  ...retriesOption(4),
  out: { help: 'JSON results file', default: join(ROOT, 'bench', 'results', 'latest.json'), parse: (text: string) => text },
});

const TIMING = timingOf(opts);
const VARIANTS = opts.variants.filter((v) => v !== 'ours/batch' || opts.batch > 1);

const log = (line: string) => console.log(line);
const budget = { retries: opts.retries, maxOtherPct: NOISY_OTHER_PCT, log };

// ---------------------------------------------------------------- processes

/** A server child and client children, their clocks matched. */
interface Rig {
  server: Child;
  clients: Child[];
  groups: ClientGroup[];
  /** The server child publishes: its run() paces the quotes, its CPU is the server's. */
  publisher: Publisher & { lastRssMb: number };
}

async function startRig(clientProcs: number): Promise<Rig> {
  const server = startChild('server', 'server.ts');
  const clients = Array.from({ length: clientProcs }, (_, i) => startChild(`clients#${i + 1}`, 'clients.ts', ['--max-old-space-size=4096']));
  const serverClock = await clockOffset(server.rpc);
  const groups = await Promise.all(clients.map((c) => clientGroup(c, serverClock.offset)));
  const publisher = {
    lastRssMb: Number.NaN,
    async run(step: number, rate: number, durationMs: number) {
      const r = await server.rpc.call<RunResult>('run', { step, rate, durationMs }, 120_000);
      publisher.lastRssMb = r.rssMb;
      return r;
    },
    cpuMs: () => server.rpc.call<number>('cpu'),
  };
  return { server, clients, groups, publisher };
}

async function stopRig(rig: Rig): Promise<void> {
  await Promise.all([rig.server, ...rig.clients].map((c) => stopChild(c)));
}

/** Runs `fn` with a fresh rig, always tearing it down. */
async function withRig<T>(clientProcs: number, fn: (rig: Rig) => Promise<T>): Promise<T> {
  const rig = await startRig(clientProcs);
  try {
    return await fn(rig);
  } finally {
    await stopRig(rig);
  }
}

async function connectAll(rig: Rig, total: number, base: Omit<ConnectArgs, 'count'>): Promise<ConnectResult> {
  const counts = shares(total, rig.clients.length);
  return combined(await Promise.all(rig.clients.map((c, i) => c.rpc.call<ConnectResult>('connect', { ...base, count: counts[i] ?? 0 } satisfies ConnectArgs, 300_000))));
}

const closeAll = (rig: Rig) => Promise.all(rig.clients.map((c) => c.rpc.call('closeAll').catch(() => undefined)));

// ---------------------------------------------------------------- fan-out

interface StepRow extends StepFigures {
  variant: Variant;
  rate: number;
  published: number;
  /** Events/s the driver actually achieved over the whole step. */
  achievedRate: number;
  expectedMsgsPerSec: number;
  serverRssMb: number;
  driverMaxBehind: number;
  batchFrames: number;
  deltaFrames: number;
  envelopesPerFrame: number;
  duplicates: number;
  /** Envelopes still undelivered when the next step started (after the quiesce wait). */
  backlogLeft: number;
  /** Other processes used more than NOISY_OTHER_PCT of a core during the step, even after re-runs. */
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

/** One variant's server and client processes, alive for the whole fan-out phase. */
interface VariantRig {
  variant: Variant;
  rig: Rig;
  connected: number;
  result: VariantResult;
  active: boolean;
  saturatedSteps: number;
}

async function setUpVariant(variant: Variant): Promise<VariantRig> {
  const rig = await startRig(opts.clientProcs);
  try {
    const started = await rig.server.rpc.call<StartResult>('start', { kind: variant === 'bare' ? 'bare' : 'ours', maxConnections: opts.clients + 100, historyMaxLen: 10_000, deliveries: opts.deliveries === 'on' } satisfies StartArgs);
    const subscribe = variant === 'bare' ? null : { topic: BENCH_TOPIC, batch_size: variant === 'ours/batch' ? opts.batch : null };
    const conn = await connectAll(rig, opts.clients, { url: started.url, namespace: started.namespace, token: started.token, subscribe });
    log(`[${variant}] ${conn.connected} clients connected${subscribe ? ' and subscribed' : ''} in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
    if (conn.connected === 0) throw new Error(`[${variant}] no client connected: ${conn.firstError}`);
    log(`[${variant}] clock offset client-server: ${rig.groups.map((g) => `${g.shift.toFixed(3)} ms`).join(', ')}`);
    return { variant, rig, connected: conn.connected, result: { variant, clients: conn.connected, connectMs: conn.ms, rows: [], notes: [] }, active: true, saturatedSteps: 0 };
  } catch (err) {
    await stopRig(rig);
    throw err;
  }
}

async function tearDownVariant(v: VariantRig): Promise<void> {
  await closeAll(v.rig);
  await stopRig(v.rig);
}

async function runStep(v: VariantRig, rate: number): Promise<StepRow> {
  const { variant, rig } = v;
  const m = await measureQuietStep(rig.groups, rate, TIMING, rig.publisher, { ...budget, log: (line) => log(`[${variant}] ${line}`) });
  // Let a backlog finish before the next step (of any variant) starts, so it does not load that step.
  const backlogLeft = await drain(rig.groups, m.published * v.connected, QUIESCE_S * 1000);
  const row: StepRow = {
    ...figures(m),
    variant,
    rate,
    published: m.published,
    achievedRate: m.achievedRate,
    expectedMsgsPerSec: rate * m.clients,
    serverRssMb: rig.publisher.lastRssMb,
    driverMaxBehind: m.driverMaxBehind,
    batchFrames: m.batchFrames,
    deltaFrames: m.deltaFrames,
    envelopesPerFrame: m.received / Math.max(1, m.batchFrames + m.deltaFrames),
    duplicates: m.duplicates,
    backlogLeft,
    noisy: m.noisy,
    pass: false,
  };
  row.pass = row.latency.p99 <= P99_LIMIT_MS && row.deliveredPct >= DELIVERY_LIMIT_PCT;
  log(
    `[${variant}] ${rate} ev/s x ${row.clients} clients: ${fmtInt(row.deliveredMsgsPerSec)} msg/s delivered (${fmtPct(row.deliveredPct, 2)}), ` +
      `p50 ${fmtMs(row.latency.p50)} p95 ${fmtMs(row.latency.p95)} p99 ${fmtMs(row.latency.p99)} max ${fmtMs(row.latency.max)} ms, ` +
      `CPU server ${fmtPct(row.serverCpuPct)} clients ${fmtPct(row.clientCpuPct)} other ${fmtPct(row.otherCpuPct)}, server RSS ${row.serverRssMb.toFixed(0)} MB` +
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
    for (const rate of opts.rates) {
      for (const v of rigs) {
        if (!v.active) continue;
        const row = await runStep(v, rate);
        v.result.rows.push(row);
        const saturated = !row.pass && (row.deliveredPct < 95 || row.latency.p99 > 1000);
        v.saturatedSteps = saturated ? v.saturatedSteps + 1 : 0;
        // A second saturated step in a row measures the variant's capacity; beyond that it only burns time.
        if (v.saturatedSteps >= 2 && !opts.keepGoing) {
          const note = `saturated from ${v.result.rows[v.result.rows.length - 2]?.rate ?? rate} ev/s: higher rates skipped (use --keep-going to run them)`;
          v.result.notes.push(note);
          log(`[${v.variant}] ${note}`);
          v.active = false;
        }
        await sleep(200);
      }
    }
    for (const v of rigs) {
      if (v.variant === 'ours/batch' && v.result.rows.every((r) => r.batchFrames === 0)) {
        const note = `no \`batch\` frames were received at any rate (batch_size=${opts.batch} not honoured by the server?): these rows are plain deltas`;
        v.result.notes.push(note);
        log(`[${v.variant}] NOTE: ${note}`);
      }
    }
    return rigs.map((r) => r.result);
  } finally {
    for (const v of rigs) await tearDownVariant(v);
  }
}

// ---------------------------------------------------------------- idle memory

interface MemoryResult {
  server: 'ours' | 'bare';
  connections: number;
  serverSeen: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  rssKbPerConn: number;
  heapKbPerConn: number;
}

async function runIdleMemory(kind: 'ours' | 'bare'): Promise<MemoryResult> {
  return withRig(1, async (rig) => {
    const started = await rig.server.rpc.call<StartResult>('start', { kind, maxConnections: opts.idle + 100, historyMaxLen: 10_000, deliveries: opts.deliveries === 'on' } satisfies StartArgs);
    const idle = { url: started.url, namespace: started.namespace, token: started.token, subscribe: null };
    // Warm-up: code compiled on the first connections is a one-off cost, not a per-connection one.
    await connectAll(rig, 50, idle);
    await closeAll(rig);
    await sleep(300);
    const before = await rig.server.rpc.call<MemStats>('mem');
    const conn = await connectAll(rig, opts.idle, idle);
    await sleep(1000);
    const after = await rig.server.rpc.call<MemStats>('mem');
    const seen = await rig.server.rpc.call<{ connections: number }>('connections');
    await closeAll(rig);
    const n = Math.max(1, conn.connected);
    const result: MemoryResult = {
      server: kind,
      connections: conn.connected,
      serverSeen: seen.connections,
      rssBeforeMb: before.rss / 2 ** 20,
      rssAfterMb: after.rss / 2 ** 20,
      rssKbPerConn: (after.rss - before.rss) / 1024 / n,
      heapKbPerConn: (after.heapUsed - before.heapUsed) / 1024 / n,
    };
    log(
      `[memory/${kind}] ${conn.connected} idle connections (server sees ${seen.connections}${conn.failed ? `, ${conn.failed} failed: ${conn.firstError}` : ''}): ` +
        `RSS ${result.rssBeforeMb.toFixed(1)} -> ${result.rssAfterMb.toFixed(1)} MB = ${result.rssKbPerConn.toFixed(1)} KB/conn, heapUsed ${result.heapKbPerConn.toFixed(1)} KB/conn (after GC)`,
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
  return withRig(1, async (rig) => {
    const client = rig.clients[0] as Child;
    const started = await rig.server.rpc.call<StartResult>('start', { kind: 'ours', maxConnections: 100, historyMaxLen: opts.resume + 2000, deliveries: opts.deliveries === 'on' } satisfies StartArgs);
    // Some history before the resume point, then the entries the client will be missing.
    const lead = 1000;
    const bulk = await rig.server.rpc.call<{ head: number; ms: number; errors: number }>('publishBulk', { count: lead + opts.resume, step: nextStep() }, 300_000);
    if (bulk.errors > 0) throw new Error(`resume: ${bulk.errors} events were not applied`);
    const fromSeq = bulk.head - opts.resume;
    log(`[resume] published ${lead + opts.resume} quotes in ${fmtInt(bulk.ms)} ms (head ${bulk.head}); resuming from ${fromSeq}`);
    const runs: ResumeResult[] = [];
    for (let i = 0; i < 3; i++) {
      const args: ResumeArgs = { url: started.url, namespace: started.namespace, token: started.token ?? '', topic: BENCH_TOPIC, fromSeq, expected: opts.resume, batchSize: opts.resumeBatch };
      const r = await client.rpc.call<ResumeResult>('resume', args, 60_000);
      runs.push(r);
      log(
        `[resume] run ${i + 1}: ${r.received} deltas (seq ${r.firstSeq}..${r.lastSeq}, ${r.contiguous ? 'contiguous' : 'NOT contiguous'}${r.snapshot ? ', got a snapshot (re-sync!)' : ''}) ` +
          `all received in ${fmtMs(r.allMs)} ms (ack after ${fmtMs(r.ackMs)} ms)`,
      );
    }
    const sorted = runs.map((r) => r.allMs).sort((a, b) => a - b);
    const medianMs = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
    return { entries: opts.resume, head: bulk.head, fromSeq, runs, medianMs, entriesPerSec: opts.resume / (medianMs / 1000) };
  });
}

// ---------------------------------------------------------------- output

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

const ratio = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(2)}x`);

function markdown(results: VariantResult[], summaries: Summary[], memory: MemoryResult[], resume: ResumeSummary | null, env: ReturnType<typeof machine>): string {
  const out: string[] = [];
  out.push(`### Fan-out: ${opts.clients} Socket.IO clients on one topic (${env.cpus} cores, Node ${env.node}, socket.io ${env.socketio}, all on 127.0.0.1)`);
  out.push('');
  out.push(`Each step: ${TIMING.warmupS} s warm-up + ${TIMING.stepS} s measured. Latency = client receipt - server publish (high-res clock, matched by correlation_id). Pass = p99 <= ${P99_LIMIT_MS} ms and >= ${DELIVERY_LIMIT_PCT}% delivered.`);
  out.push('');
  out.push(
    `Variants: **ours** = the real system (ingest.submit -> validate -> project -> in-memory store -> topic feed -> room broadcast on /market), so its latency includes ingest; ` +
      (VARIANTS.includes('ours/batch') ? `**ours/batch** = the same with \`batch_size: ${opts.batch}\` on subscribe (a batch that holds one envelope goes out as a plain delta, so low rates look like **ours**); ` : '') +
      `**bare** = a plain Socket.IO server doing \`io.emit('delta', envelope)\` with the same envelope shape. Delivered msg/s counts envelopes received inside the measured window (so it can exceed the target while a backlog drains).`,
  );
  out.push('');
  out.push(`CPU columns are % of one core (the box has ${env.cpus}); "other" is CPU used on the machine by anything but the benchmark's server and client processes.`);
  out.push('');
  out.push(
    table(
      ['Variant', 'Target ev/s', 'Expected msg/s', 'Delivered msg/s', 'Delivered', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'CPU server / clients / other', 'Server RSS MB', 'Pass'],
      results.flatMap((r) =>
        r.rows.map((row) => [
          row.variant,
          fmtInt(row.rate),
          fmtInt(row.expectedMsgsPerSec),
          fmtInt(row.deliveredMsgsPerSec),
          fmtPct(row.deliveredPct, 2),
          fmtMs(row.latency.p50),
          fmtMs(row.latency.p95),
          fmtMs(row.latency.p99),
          fmtMs(row.latency.max),
          `${fmtPct(row.serverCpuPct)} / ${fmtPct(row.clientCpuPct)} / ${fmtPct(row.otherCpuPct)}`,
          row.serverRssMb.toFixed(0),
          `${row.pass ? 'yes' : 'no'}${row.noisy ? '*' : ''}`,
        ]),
      ),
    ),
  );
  const notes = results.flatMap((r) => r.notes.map((n) => `- ${r.variant}: ${n}`));
  if (results.some((r) => r.rows.some((row) => row.noisy))) notes.unshift(`- \\* other processes on the machine used more than ${NOISY_OTHER_PCT}% of a core during that step (even after re-runs): treat it as noisy`);
  if (notes.length > 0) out.push('', ...notes);
  out.push('');
  out.push(
    table(
      ['Variant', 'Highest passing rate (ev/s)', 'Delivered msg/s at that rate', 'vs bare', 'Peak delivered msg/s (any step)', 'Peak vs bare'],
      summaries.map((s) => [s.variant, s.bestRate === null ? 'none' : fmtInt(s.bestRate), s.bestDeliveredMsgsPerSec === null ? 'n/a' : fmtInt(s.bestDeliveredMsgsPerSec), ratio(s.ratioVsBare), fmtInt(s.peakDeliveredMsgsPerSec), ratio(s.peakRatioVsBare)]),
    ),
  );
  if (memory.length > 0) {
    out.push('');
    out.push(
      table(
        ['Server', 'Idle connections', 'RSS before -> after (MB)', 'RSS per connection', 'heapUsed per connection'],
        memory.map((m) => [m.server === 'ours' ? 'ours (/market)' : 'bare Socket.IO', fmtInt(m.connections), `${m.rssBeforeMb.toFixed(1)} -> ${m.rssAfterMb.toFixed(1)}`, `${m.rssKbPerConn.toFixed(1)} KB`, `${m.heapKbPerConn.toFixed(1)} KB`]),
      ),
    );
  }
  if (resume) {
    out.push('');
    const runs = resume.runs.map((r) => fmtMs(r.allMs)).join(' / ');
    const ok = resume.runs.every((r) => r.contiguous && r.received === resume.entries && !r.snapshot);
    out.push(
      `Resume: a client subscribing with resume_from_seq = head - ${fmtInt(resume.entries)}${opts.resumeBatch > 1 ? ` and batch_size ${opts.resumeBatch}` : ' (no batching)'} received all ${fmtInt(resume.entries)} deltas in ${fmtMs(resume.medianMs)} ms median (runs: ${runs} ms; ~${fmtInt(resume.entriesPerSec)} entries/s)${ok ? ', gap-free' : ', WITH PROBLEMS (see JSON)'}.`,
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = Date.now();
  const env = machine();
  log(
    `BondX Stream fan-out benchmark: ${opts.clients} clients, rates ${opts.rates.join(',')} ev/s, variants ${VARIANTS.join(', ')}${VARIANTS.includes('ours/batch') ? ` (batch_size ${opts.batch})` : ''}, ` +
      `${opts.clientProcs} client process(es); ${env.cpus} x ${env.cpu}`,
  );
  const idleBusy = await waitForQuietMachine(log);
  const results = await runFanOut();
  const memory: MemoryResult[] = [];
  if (opts.idle > 0) {
    memory.push(await runIdleMemory('ours'));
    memory.push(await runIdleMemory('bare'));
  }
  const resume = opts.resume > 0 ? await runResume() : null;
  const summaries = summarise(results);
  for (const s of summaries) {
    log(
      `[summary] ${s.variant}: highest passing rate ${s.bestRate ?? 'none'} ev/s, ${s.bestDeliveredMsgsPerSec === null ? 'n/a' : fmtInt(s.bestDeliveredMsgsPerSec)} msg/s delivered` +
        (s.ratioVsBare === null ? '' : `, ${s.ratioVsBare.toFixed(2)}x bare`),
    );
  }
  const md = markdown(results, summaries, memory, resume, env);
  log(`\n${md}\n`);
  const config = { ...opts, variants: VARIANTS };
  const file = writeResults('fanout', { durationS: (Date.now() - t0) / 1000, machineBusyBeforePct: idleBusy, config, results, summaries, memory, resume, markdown: md }, opts.out);
  log(`Results written to ${file} (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

runMain(main);
