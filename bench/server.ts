import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer } from 'socket.io';
import { issueToken, jwtKeysFromConfig } from '../src/gateway/auth.js';
import { silentLogger } from '../src/observability/logger.js';
import { startSystem, type System } from '../src/runtime/system.js';
import { quoteEnvelope } from './rig.js';
import {
  BENCH_ISIN,
  benchConfig,
  BENCH_TOPIC,
  HOST,
  hrNow,
  quoteEvent,
  serveRpc,
  sleep,
  type MemStats,
  type QuoteEventShape,
  type RunArgs,
  type RunResult,
  type StartArgs,
  type StartResult,
} from './shared.js';

/**
 * Server child: either OUR gateway (the real embedded system, in-memory store, simulator off) or a
 * bare Socket.IO server, plus a driver that publishes quotes at a target rate. Controlled by run.ts.
 */

type Publisher = (event: QuoteEventShape) => void;

let system: System | undefined;
let bare: { io: SocketIoServer; http: HttpServer } | undefined;
let publish: Publisher | undefined;
let publishErrors = 0;
let bareSeq = 0;

const gc = (globalThis as { gc?: () => void }).gc;

async function start(args: StartArgs): Promise<StartResult> {
  if (args.kind === 'ours') {
    const config = benchConfig(args.maxConnections, {
      HISTORY_MAX_LEN: String(args.historyMaxLen),
      // The batching window under test can be set from the bench's environment.
      ...(process.env.WS_BATCH_FLUSH_MS ? { WS_BATCH_FLUSH_MS: process.env.WS_BATCH_FLUSH_MS } : {}),
    });
    const keys = jwtKeysFromConfig(config);
    const sys = await startSystem(config, silentLogger, { projector: true, gateway: true, simulator: false }, keys);
    system = sys;
    const ingest = sys.ingest;
    const server = sys.server;
    if (!ingest || !server) throw new Error('the benchmark needs the projector and gateway roles in one process');
    publish = (event) => {
      ingest.submit(event, 'bench').then(
        (outcome) => {
          if (outcome.status !== 'applied') publishErrors++;
        },
        () => publishErrors++,
      );
    };
    return { url: server.url, token: issueToken(keys, { sub: 'bench-trader', ttl: 3600 }), namespace: '/market' };
  }
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, HOST, () => resolve());
  });
  bare = { io, http };
  publish = (event) => {
    // The same envelope our gateway sends for a quote.
    io.emit('delta', quoteEnvelope(event, ++bareSeq, 'bare'));
  };
  const address = http.address() as AddressInfo;
  return { url: `http://${HOST}:${address.port}`, token: null, namespace: '/' };
}

/** Publishes `rate` events/s for `durationMs`, paced on a 1 ms timer (catching up on whatever fell due). */
async function run(args: RunArgs): Promise<RunResult> {
  const send = publish;
  if (!send) throw new Error('server not started');
  const total = Math.round((args.rate * args.durationMs) / 1000);
  const publishTimes: number[] = new Array<number>(total);
  const cpu0 = process.cpuUsage();
  const startedAt = hrNow();
  let n = 0;
  let maxBehind = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = hrNow();
      const due = Math.min(total, Math.floor(((now - startedAt) * args.rate) / 1000) + 1);
      maxBehind = Math.max(maxBehind, due - n);
      while (n < due) {
        publishTimes[n] = hrNow();
        send(quoteEvent(args.step, n));
        n++;
      }
      if (n >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const endedAt = hrNow();
  const cpu = process.cpuUsage(cpu0);
  const mem = process.memoryUsage();
  return {
    published: n,
    publishTimes,
    startedAt,
    endedAt,
    maxBehind,
    cpuMs: (cpu.user + cpu.system) / 1000,
    rssMb: mem.rss / 2 ** 20,
    heapUsedMb: mem.heapUsed / 2 ** 20,
  };
}

/** Publishes `count` quotes back to back (for the resume benchmark) and returns the topic's head seq. */
async function publishBulk(args: { count: number; step: number }): Promise<{ head: number; ms: number; errors: number }> {
  const ingest = system?.ingest;
  if (!system || !ingest) throw new Error('our system is not started');
  const t0 = hrNow();
  const pending: Promise<unknown>[] = [];
  for (let n = 0; n < args.count; n++) {
    pending.push(ingest.submit(quoteEvent(args.step, n, BENCH_ISIN), 'bench'));
    if (pending.length >= 500) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const snapshot = await system.backends.store.snapshot(BENCH_TOPIC);
  return { head: snapshot?.seq ?? 0, ms: hrNow() - t0, errors: publishErrors };
}

async function mem(args: { gc: boolean }): Promise<MemStats> {
  if (args.gc && gc) {
    for (let i = 0; i < 3; i++) {
      gc();
      await sleep(50);
    }
  }
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, gc: args.gc && gc !== undefined };
}

function connections(): number {
  if (system?.server) return system.server.gateway.connectionCounts().total;
  if (bare) return bare.io.of('/').sockets.size;
  return 0;
}

async function stop(): Promise<null> {
  await system?.close();
  if (bare) await new Promise<void>((resolve) => bare?.io.close(() => resolve()));
  setTimeout(() => process.exit(0), 50);
  return null;
}

serveRpc({
  start: (a: StartArgs) => start(a),
  run: (a: RunArgs) => run(a),
  publishBulk: (a: { count: number; step: number }) => publishBulk(a),
  mem: (a: { gc: boolean }) => mem(a),
  connections: () => ({ connections: connections(), publishErrors }),
  cpu: () => {
    const c = process.cpuUsage();
    return { cpuMs: (c.user + c.system) / 1000, at: hrNow() };
  },
  stop: () => stop(),
});
