import type { QuoteEvent } from '../src/domain/events.js';
import { startTestSystem, type TestSystem } from '../test/support/system.js';
import { serveRpc } from './lib/rpc.js';
import { fullGc, hrNow, ownCpuMs } from './lib/stats.js';
import { pace, type PaceResult } from './lib/steps.js';
import { BENCH_TOPIC, benchQuote, quoteEnvelope, startBareServer, submitter, type BareServer } from './lib/system.js';

/**
 * Server child of `bench/run.ts`: either OUR gateway (the real embedded system, in-memory store,
 * simulator off) or a bare Socket.IO server, plus the paced publisher of the quotes it fans out.
 */

export interface StartArgs {
  kind: 'ours' | 'bare';
  maxConnections: number;
  historyMaxLen: number;
  /** AUDIT_DELIVERIES of our gateway: its delivery record on or off (absent: the configuration's default). */
  deliveries?: boolean;
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

export type RunResult = PaceResult & { rssMb: number };

export interface MemStats {
  rss: number;
  heapUsed: number;
}

let system: TestSystem | undefined;
let bare: BareServer | undefined;
let publish: ((event: QuoteEvent) => void) | undefined;
let errors: () => number = () => 0;

async function start(args: StartArgs): Promise<StartResult> {
  if (args.kind === 'ours') {
    system = await startTestSystem({
      WS_MAX_CONNECTIONS: String(args.maxConnections),
      HISTORY_MAX_LEN: String(args.historyMaxLen),
      ...(args.deliveries === undefined ? {} : { AUDIT_DELIVERIES: String(args.deliveries) }),
    });
    const ingest = submitter(system.ingest);
    publish = ingest.submit;
    errors = ingest.errors;
    return { url: system.server.url, token: system.token('bench-trader'), namespace: '/market' };
  }
  const server = await startBareServer();
  bare = server;
  let seq = 0;
  // The same envelope our gateway sends for a quote.
  publish = (event) => server.io.emit('delta', quoteEnvelope(event, ++seq, 'bare'));
  return { url: server.url, token: null, namespace: '/' };
}

async function run(args: RunArgs): Promise<RunResult> {
  const send = publish;
  if (!send) throw new Error('server not started');
  const result = await pace(args.rate, args.durationMs, (n) => send(benchQuote(args.step, n)));
  return { ...result, rssMb: process.memoryUsage.rss() / 2 ** 20 };
}

/** Publishes `count` quotes back to back (for the resume benchmark) and returns the topic's head seq. */
async function publishBulk(args: { count: number; step: number }): Promise<{ head: number; ms: number; errors: number }> {
  if (!system) throw new Error('our system is not started');
  const t0 = hrNow();
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < args.count; n++) {
    pending.push(system.ingest.submit(benchQuote(args.step, n), 'bench'));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const snapshot = await system.backends.store.snapshot(BENCH_TOPIC);
  return { head: snapshot?.seq ?? 0, ms: hrNow() - t0, errors: errors() };
}

async function mem(): Promise<MemStats> {
  await fullGc();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed };
}

function connections(): number {
  if (system) return system.server.gateway.connectionCounts().total;
  return bare?.io.of('/').sockets.size ?? 0;
}

serveRpc({
  start: (a: StartArgs) => start(a),
  run: (a: RunArgs) => run(a),
  publishBulk: (a: { count: number; step: number }) => publishBulk(a),
  mem: () => mem(),
  connections: () => ({ connections: connections(), publishErrors: errors() }),
  cpu: () => ownCpuMs(),
});
