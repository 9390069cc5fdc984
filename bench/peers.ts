import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import jwt from 'jsonwebtoken';
import { ROOT, spawnTsx } from '../test/support/processes.js';
import { ROOMY_ADMISSION, TEST_SECRET, token } from '../test/support/system.js';
import { sleep, waitFor } from '../test/support/waits.js';
import type { ConnectArgs } from './clients.js';
import { DELIVERY_LIMIT_PCT, NOISY_OTHER_PCT, P99_LIMIT_MS, QUIESCE_S } from './lib/criteria.js';
import { int, list, oneOf, parseOptions, retriesOption, timingOf, timingOptions } from './lib/options.js';
import { cpuMsOf, freePort, processTree, rssOf } from './lib/proc.js';
import { fmtInt, fmtMs, fmtNum, fmtPct, machine, table, writeResults } from './lib/report.js';
import { clockOffset, runMain, startChild, stopChild, type Child } from './lib/rpc.js';
import { waitForQuietMachine } from './lib/stats.js';
import { clientGroup, combined, drain, figures, measureQuietStep, measureStep, shares, type ClientGroup, type ConnectResult, type Publisher, type StepFigures } from './lib/steps.js';
import { BENCH_ISIN, BENCH_TOPIC, HOST } from './lib/system.js';
import type { PeerConnectArgs, PeerStepStats } from './peer-clients.js';
import type { PublishRunResult, PublishTarget } from './peer-publisher.js';
import type { RunResult, StartArgs, StartResult } from './server.js';

/**
 * `npm run bench:peers`: our gateway next to Centrifugo (Go, the peer a team would otherwise pick) on
 * the same plain WebSocket client processes and the same publisher cadence, one peer after the other:
 *
 * - **ours**: `bondx all` as its own OS process (HTTP ingest -> validate -> project -> in-memory store ->
 *   feed -> rooms), clients on `/api/v1/ws/market/{isin}`; `--workers N` instead runs `bondx all` (ingest
 *   and projector on Redis) plus `bondx gateway --workers N` for the clients, every process counted.
 * - **ours/batch**: the same with `batch_size` on subscribe.
 * - **centrifugo**: v6 built by scripts/centrifugo.sh, uni_websocket (one message per frame), HTTP API.
 * - **centrifugo/join**: the same with `join_push_messages` (many messages per frame).
 * - **bare-sio**: the fan-out benchmark's bare Socket.IO server and socket.io clients (bench/server.ts,
 *   bench/clients.ts), publishing in-process: a reference for what Socket.IO alone costs.
 * - **bare-ws**: bench/bare-ws-server.ts, a `ws` server on our URL and ingest path that writes each posted
 *   event, framed once, to every socket: the floor of one frame (one write) per message from Node.
 *
 * The publisher child (peer-publisher.ts) posts every 1 ms what fell due as one request to the peer's
 * HTTP API. Server CPU is read from /proc/<pid>/stat of the server's processes (for bare-sio, the
 * server child's own CPU, publishing included), per message delivered over the whole step.
 */

type Peer = 'ours' | 'ours/batch' | 'centrifugo' | 'centrifugo/join' | 'bare-sio' | 'bare-ws';
const PEERS: Peer[] = ['ours', 'ours/batch', 'centrifugo', 'centrifugo/join', 'bare-sio', 'bare-ws'];

const opts = parseOptions('npm run bench:peers --', 'Our gateway vs Centrifugo (and bare Socket.IO) on the same WebSocket clients and publisher cadence.', {
  clients: { help: 'subscribed clients per peer', default: 250, parse: int(1) },
  rates: { help: 'offered events/s steps (x clients = offered msg/s)', default: [50, 100, 200, 400, 800], parse: list(int(1)) },
  peers: { help: `any of ${PEERS.join(',')}`, default: PEERS, parse: list(oneOf<Peer>(...PEERS)) },
  batch: { help: 'batch_size of ours/batch', default: 100, parse: int(2) },
  workers: { help: 'ours: 0 = one embedded `bondx all`; N = `bondx gateway --workers N` on Redis (needs REDIS_URL)', default: 0, parse: int(0) },
  centrifugoRedis: { help: 'Centrifugo on the Redis engine (REDIS_URL) instead of memory', default: false },
  ...timingOptions({ warmup: 1, step: 5, drain: 3 }),
  clientProcs: { help: 'client processes the clients are split over', default: 2, parse: int(1) },
  idle: { help: 'idle connections for memory per connection (ours, centrifugo); 0 skips it', default: 2000, parse: int(0) },
  cpuProf: { help: "directory for our server processes' V8 CPU profiles (--cpu-prof; summarise with bench/prof-summary.ts)", default: '', parse: (text: string) => text },
  keepGoing: { help: 'keep raising the rate after a peer saturates (default: stop it after 2 saturated steps)', default: false },
  ...retriesOption(3),
  out: { help: 'JSON results file', default: join(ROOT, 'bench', 'results', 'peers.json'), parse: (text: string) => text },
});

const TIMING = timingOf(opts);
const CHANNEL = `prices:${BENCH_ISIN}`;
const CENTRIFUGO_SECRET = 'bench-secret-0123456789abcdef0123456789';
const CENTRIFUGO_API_KEY = 'bench-api-key';
/** Offered msg/s at which CPU per message is compared (the issue's figure). */
const CPU_COMPARE_MSGS = 50_000;

const log = (line: string) => console.log(line);
const budget = { retries: opts.retries, maxOtherPct: NOISY_OTHER_PCT, log };

// ---------------------------------------------------------------- servers

/** A peer's server as OS processes: where clients connect and publishers post, and what to measure. */
interface Server {
  /** Root pids whose process trees are the server (CPU, RSS). */
  pids: number[];
  clientUrl: string;
  target: PublishTarget;
  /** Centrifugo's connection token (the channel in its `channels` claim). */
  clientToken: string | null;
  stop(): Promise<void>;
}

const serverPids = (s: Server) => s.pids.flatMap(processTree);

function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

async function waitHttp(url: string, init: RequestInit, proc: ChildProcess, what: string): Promise<void> {
  await waitFor(
    async () => {
      if (proc.exitCode !== null) throw new Error(`${what} exited (code ${proc.exitCode}) before answering`);
      return fetch(url, init).then(
        (res) => res.ok,
        () => false,
      );
    },
    60_000,
    `${what} at ${url}`,
    200,
  );
}

/** Our environment for a benchmark process: no services unless asked, limits out of the way, quiet logs. */
function oursEnv(port: number, extra: Record<string, string>): NodeJS.ProcessEnv {
  const { REDIS_URL: _r, REDIS_CLUSTER_NODES: _c, KAFKA_BROKERS: _k, ...env } = process.env;
  return {
    ...env,
    ...ROOMY_ADMISSION,
    HOST,
    PORT: String(port),
    PROMETHEUS_PORT: '0',
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'warn',
    SIMULATOR: 'false',
    WS_MAX_CONNECTIONS: String(opts.clients + opts.idle + 1000),
    ...extra,
  };
}

async function startBondx(args: string[], env: NodeJS.ProcessEnv, port: number): Promise<ChildProcess> {
  const nodeFlags = opts.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`] : [];
  const proc = spawnTsx('src/cli/bondx.ts', args, { env, nodeFlags, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitHttp(`http://${HOST}:${port}/readyz`, {}, proc, `bondx ${args.join(' ')}`);
  return proc;
}

async function startOurs(): Promise<Server> {
  const ingestPort = await freePort();
  if (opts.workers === 0) {
    const proc = await startBondx(['all', '--no-simulator'], oursEnv(ingestPort, {}), ingestPort);
    return {
      pids: [proc.pid as number],
      clientUrl: `ws://${HOST}:${ingestPort}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token('bench-trader'))}`,
      target: { kind: 'ours', url: `http://${HOST}:${ingestPort}`, token: token('bench-publisher', 'publisher') },
      clientToken: null,
      stop: () => stopProcess(proc),
    };
  }
  const redis = process.env.REDIS_URL;
  if (!redis) throw new Error('--workers needs REDIS_URL (bash scripts/services.sh up && eval "$(bash scripts/services.sh env)")');
  // A prefix of its own per run: the topic starts empty, and nothing else's keys are touched.
  const redisEnv = { REDIS_URL: redis, REDIS_PREFIX: `bench-peers-${process.pid}-${Date.now()}` };
  const ingest = await startBondx(['all', '--no-simulator'], oursEnv(ingestPort, redisEnv), ingestPort);
  const gatewayPort = await freePort();
  const gateway = await startBondx(['gateway', '--workers', String(opts.workers)], oursEnv(gatewayPort, redisEnv), gatewayPort);
  return {
    pids: [ingest.pid as number, gateway.pid as number],
    clientUrl: `ws://${HOST}:${gatewayPort}/api/v1/ws/market/${BENCH_ISIN}?token=${encodeURIComponent(token('bench-trader'))}`,
    target: { kind: 'ours', url: `http://${HOST}:${ingestPort}`, token: token('bench-publisher', 'publisher') },
    clientToken: null,
    stop: async () => {
      await stopProcess(gateway);
      await stopProcess(ingest);
    },
  };
}

/** The floor reference: bench/bare-ws-server.ts on our client URL and our ingest's POST. */
async function startBareWs(): Promise<Server> {
  const port = await freePort();
  const proc = spawnTsx('bench/bare-ws-server.ts', [], { env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitHttp(`http://${HOST}:${port}/readyz`, {}, proc, 'bare-ws');
  return {
    pids: [proc.pid as number],
    clientUrl: `ws://${HOST}:${port}/api/v1/ws/market/${BENCH_ISIN}`,
    target: { kind: 'ours', url: `http://${HOST}:${port}`, token: 'none' },
    clientToken: null,
    stop: () => stopProcess(proc),
  };
}

/** Path of the Centrifugo binary (built once), or null with the reason when it can not be had. */
function centrifugoBinary(): Promise<{ ok: true } | { ok: false; reason: string }> {
  return new Promise((resolve) => {
    const proc = spawn('bash', [join(ROOT, 'scripts', 'centrifugo.sh'), 'path'], { stdio: ['ignore', 'pipe', 'inherit'] });
    proc.once('exit', (code) => resolve(code === 0 ? { ok: true } : { ok: false, reason: code === 3 ? 'no Go toolchain to build it' : `scripts/centrifugo.sh path exited ${code}` }));
  });
}

async function startCentrifugo(join: boolean): Promise<Server> {
  const port = await freePort();
  const env = {
    ...process.env,
    BONDX_CENTRIFUGO_PORT: String(port),
    BONDX_CENTRIFUGO_SECRET: CENTRIFUGO_SECRET,
    BONDX_CENTRIFUGO_API_KEY: CENTRIFUGO_API_KEY,
    BONDX_CENTRIFUGO_JOIN: String(join),
    ...(opts.centrifugoRedis && process.env.REDIS_URL ? { BONDX_CENTRIFUGO_REDIS: process.env.REDIS_URL } : {}),
  };
  if (opts.centrifugoRedis && !process.env.REDIS_URL) throw new Error('--centrifugo-redis needs REDIS_URL');
  // The script execs Centrifugo: this pid is the server's.
  const proc = spawn('bash', [`${ROOT}/scripts/centrifugo.sh`, 'run'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://${HOST}:${port}`;
  await waitHttp(`${url}/api/info`, { method: 'POST', headers: { 'x-api-key': CENTRIFUGO_API_KEY }, body: '{}' }, proc, 'centrifugo');
  return {
    pids: [proc.pid as number],
    clientUrl: `ws://${HOST}:${port}/connection/uni_websocket`,
    target: { kind: 'centrifugo', url, apiKey: CENTRIFUGO_API_KEY, channel: CHANNEL },
    clientToken: jwt.sign({ sub: 'bench-trader', channels: [CHANNEL] }, CENTRIFUGO_SECRET, { algorithm: 'HS256', expiresIn: '12h' }),
    stop: () => stopProcess(proc),
  };
}

// ---------------------------------------------------------------- a peer's rig

interface Rig {
  peer: Peer;
  clients: Child[];
  groups: ClientGroup[];
  publisher: Publisher;
  /** The publishing process's CPU (the publisher child; for bare-sio it is the server itself). */
  publisherCpuMs(): Promise<number>;
  connected: number;
  /** Connects `count` more clients like the rig's own. */
  connect(count: number): Promise<ConnectResult>;
  /** Server processes' RSS, bytes. */
  serverRss(): Promise<number>;
  stop(): Promise<void>;
}

async function startRig(peer: Peer, count: number, clientProcs: number): Promise<Rig> {
  if (peer === 'bare-sio') return startBareRig(count, clientProcs);
  const server = peer.startsWith('centrifugo') ? await startCentrifugo(peer === 'centrifugo/join') : peer === 'bare-ws' ? await startBareWs() : await startOurs();
  const children: Child[] = [];
  try {
    const pub = startChild('publisher', 'peer-publisher.ts');
    children.push(pub);
    const clients = Array.from({ length: clientProcs }, (_, i) => startChild(`peer-clients#${i + 1}`, 'peer-clients.ts', ['--max-old-space-size=4096']));
    children.push(...clients);
    const pubClock = await clockOffset(pub.rpc);
    const groups = await Promise.all(clients.map((c) => clientGroup(c, pubClock.offset)));
    const base: Omit<PeerConnectArgs, 'count'> = {
      protocol: peer.startsWith('centrifugo') ? 'centrifugo' : 'ours',
      url: server.clientUrl,
      token: server.clientToken,
      topic: BENCH_TOPIC,
      batchSize: peer === 'ours/batch' ? opts.batch : 0,
    };
    const connect = async (n: number) => {
      const counts = shares(n, clients.length);
      return combined(await Promise.all(clients.map((c, i) => c.rpc.call<ConnectResult>('connect', { ...base, count: counts[i] ?? 0 } satisfies PeerConnectArgs, 300_000))));
    };
    const conn = await connect(count);
    reportConnect(peer, conn);
    const pids = serverPids(server);
    const publisher: Publisher = {
      async run(step, rate, durationMs) {
        const r = await pub.rpc.call<PublishRunResult>('run', { target: server.target, step, rate, durationMs }, 120_000);
        if (r.failed > 0) log(`[${peer}] publisher: ${r.failed} of ${r.requests} requests failed (${r.firstError})`);
        return r;
      },
      cpuMs: async () => cpuMsOf(pids),
    };
    return {
      peer,
      clients,
      groups,
      publisher,
      publisherCpuMs: () => pub.rpc.call<number>('cpu'),
      connected: conn.connected,
      connect,
      serverRss: async () => rssOf(serverPids(server)),
      stop: async () => {
        await Promise.all(children.map(stopChild));
        await server.stop();
      },
    };
  } catch (err) {
    await Promise.all(children.map(stopChild));
    await server.stop();
    throw err;
  }
}

/** The fan-out benchmark's bare Socket.IO server child and socket.io client children, as they are. */
async function startBareRig(count: number, clientProcs: number): Promise<Rig> {
  const server = startChild('bare-server', 'server.ts');
  const clients = Array.from({ length: clientProcs }, (_, i) => startChild(`clients#${i + 1}`, 'clients.ts', ['--max-old-space-size=4096']));
  const all = [server, ...clients];
  try {
    const serverClock = await clockOffset(server.rpc);
    const groups = await Promise.all(clients.map((c) => clientGroup(c, serverClock.offset)));
    const started = await server.rpc.call<StartResult>('start', { kind: 'bare', maxConnections: count + 100, historyMaxLen: 1000 } satisfies StartArgs);
    const connect = async (n: number) => {
      const counts = shares(n, clients.length);
      return combined(
        await Promise.all(clients.map((c, i) => c.rpc.call<ConnectResult>('connect', { url: started.url, namespace: started.namespace, token: null, subscribe: null, count: counts[i] ?? 0 } satisfies ConnectArgs, 300_000))),
      );
    };
    const conn = await connect(count);
    reportConnect('bare-sio', conn);
    const cpu = () => server.rpc.call<number>('cpu');
    const pid = server.proc.pid as number;
    return {
      peer: 'bare-sio',
      clients,
      groups,
      publisher: { run: (step, rate, durationMs) => server.rpc.call<RunResult>('run', { step, rate, durationMs }, 120_000), cpuMs: cpu },
      publisherCpuMs: async () => Number.NaN,
      connected: conn.connected,
      connect,
      serverRss: async () => rssOf([pid]),
      stop: async () => {
        await Promise.all(all.map(stopChild));
      },
    };
  } catch (err) {
    await Promise.all(all.map(stopChild));
    throw err;
  }
}

function reportConnect(peer: Peer, conn: ConnectResult): void {
  log(`[${peer}] ${conn.connected} clients connected and subscribed in ${(conn.ms / 1000).toFixed(1)} s${conn.failed ? ` (${conn.failed} failed: ${conn.firstError})` : ''}`);
  if (conn.connected === 0) throw new Error(`[${peer}] no client connected: ${conn.firstError}`);
}

// ---------------------------------------------------------------- steps

interface Row extends StepFigures {
  peer: Peer;
  rate: number;
  offeredMsgsPerSec: number;
  /** Server CPU per message delivered over the whole step (warm-up and drain included), µs. */
  serverCpuUsPerMsg: number;
  /** The busiest client process, % of one core: near 100 % the load generator is the limit. */
  busiestClientPct: number;
  publisherCpuPct: number;
  serverRssMb: number;
  msgsPerFrame: number;
  driverMaxBehind: number;
  noisy: boolean;
  pass: boolean;
}

async function runStep(rig: Rig, rate: number): Promise<Row> {
  const pub0 = await rig.publisherCpuMs();
  const m = await measureQuietStep(rig.groups, rate, TIMING, rig.publisher, { ...budget, log: (line) => log(`[${rig.peer}] ${line}`) });
  const pubMs = (await rig.publisherCpuMs()) - pub0;
  await drain(rig.groups, m.published * rig.connected, QUIESCE_S * 1000);
  const frames = m.perGroup.reduce((n, st) => n + ((st as Partial<PeerStepStats>).frames ?? st.batchFrames + st.deltaFrames), 0);
  const row: Row = {
    ...figures(m),
    peer: rig.peer,
    rate,
    offeredMsgsPerSec: rate * m.clients,
    serverCpuUsPerMsg: (1000 * m.serverCpuMs) / Math.max(1, m.received),
    busiestClientPct: Math.max(...m.perGroup.map((st) => (100 * st.cpuMs) / st.elapsedMs)),
    // Over all attempts of a re-run step: an upper bound of the last one's share.
    publisherCpuPct: (100 * pubMs) / m.elapsedMs,
    serverRssMb: (await rig.serverRss()) / 2 ** 20,
    msgsPerFrame: m.received / Math.max(1, frames),
    driverMaxBehind: m.driverMaxBehind,
    noisy: m.noisy,
    pass: false,
  };
  row.pass = row.latency.p99 <= P99_LIMIT_MS && row.deliveredPct >= DELIVERY_LIMIT_PCT;
  log(
    `[${rig.peer}] ${rate} ev/s x ${row.clients}: ${fmtInt(row.deliveredMsgsPerSec)} msg/s (${fmtPct(row.deliveredPct, 2)}), p50 ${fmtMs(row.latency.p50)} p95 ${fmtMs(row.latency.p95)} p99 ${fmtMs(row.latency.p99)} ms, ` +
      `server ${fmtPct(row.serverCpuPct)} = ${fmtNum(row.serverCpuUsPerMsg, 2)} us/msg, clients ${fmtPct(row.clientCpuPct)} (busiest ${fmtPct(row.busiestClientPct)}), publisher ${fmtPct(row.publisherCpuPct)}, other ${fmtPct(row.otherCpuPct)} (steal ${fmtPct(row.stealPct)}), ` +
      `${fmtNum(row.msgsPerFrame)} msg/frame${row.pass ? '' : '  <- FAIL'}`,
  );
  return row;
}

async function runPeer(peer: Peer): Promise<Row[]> {
  const rig = await startRig(peer, opts.clients, opts.clientProcs);
  const rows: Row[] = [];
  try {
    // An unrecorded step first: code the first messages compile is a one-off cost, not the rate's.
    await measureStep(rig.groups, opts.rates[0] ?? 50, { warmupS: 0.5, stepS: 1, drainS: 2 }, rig.publisher);
    await sleep(500);
    let saturated = 0;
    for (const rate of opts.rates) {
      const row = await runStep(rig, rate);
      rows.push(row);
      saturated = !row.pass && (row.deliveredPct < 95 || row.latency.p99 > 1000) ? saturated + 1 : 0;
      if (saturated >= 2 && !opts.keepGoing) {
        log(`[${peer}] saturated twice in a row: higher rates skipped (--keep-going runs them)`);
        break;
      }
    }
  } finally {
    await Promise.all(rig.clients.map((c) => c.rpc.call('closeAll').catch(() => undefined)));
    await rig.stop();
  }
  return rows;
}

// ---------------------------------------------------------------- idle memory

interface Memory {
  peer: Peer;
  connections: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  kbPerConnection: number;
}

async function idleMemory(peer: 'ours' | 'centrifugo'): Promise<Memory> {
  // A first 50 connections compile what connections need: a one-off cost, not a per-connection one.
  const warm = await startRig(peer, 50, opts.clientProcs);
  try {
    await Promise.all(warm.clients.map((c) => c.rpc.call('closeAll')));
    await sleep(1000);
    const before = await warm.serverRss();
    const conn = await warm.connect(opts.idle);
    await sleep(2000);
    const after = await warm.serverRss();
    const result = { peer, connections: conn.connected, rssBeforeMb: before / 2 ** 20, rssAfterMb: after / 2 ** 20, kbPerConnection: (after - before) / 1024 / Math.max(1, conn.connected) };
    log(`[memory/${peer}] ${conn.connected} idle subscribed connections: RSS ${result.rssBeforeMb.toFixed(1)} -> ${result.rssAfterMb.toFixed(1)} MB = ${result.kbPerConnection.toFixed(1)} KB/conn`);
    return result;
  } finally {
    await Promise.all(warm.clients.map((c) => c.rpc.call('closeAll').catch(() => undefined)));
    await warm.stop();
  }
}

// ---------------------------------------------------------------- summary and output

interface Summary {
  peer: Peer;
  /** Highest offered rate whose step passed (p99 <= 50 ms, >= 99 % delivered), and its delivered msg/s. */
  bestRate: number | null;
  bestDelivered: number | null;
  bestP99: number | null;
  peakDelivered: number;
  /** Server CPU per delivered message at the step offering CPU_COMPARE_MSGS msg/s (or the nearest). */
  cpuUsAtCompare: number | null;
  compareRate: number | null;
}

function summarise(peer: Peer, rows: Row[]): Summary {
  const best = rows.filter((r) => r.pass).reduce<Row | null>((b, r) => (b === null || r.rate > b.rate ? r : b), null);
  const compare = rows.reduce<Row | null>((b, r) => (b === null || Math.abs(r.offeredMsgsPerSec - CPU_COMPARE_MSGS) < Math.abs(b.offeredMsgsPerSec - CPU_COMPARE_MSGS) ? r : b), null);
  return {
    peer,
    bestRate: best?.rate ?? null,
    bestDelivered: best?.deliveredMsgsPerSec ?? null,
    bestP99: best?.latency.p99 ?? null,
    peakDelivered: Math.max(0, ...rows.map((r) => r.deliveredMsgsPerSec)),
    cpuUsAtCompare: compare?.serverCpuUsPerMsg ?? null,
    compareRate: compare?.rate ?? null,
  };
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? `${(a / b).toFixed(2)}x` : 'n/a');

function markdown(rows: Row[], summaries: Summary[], memory: Memory[], env: ReturnType<typeof machine>, notes: string[]): string {
  const out: string[] = [];
  out.push(`### Peers: ${opts.clients} plain WebSocket clients on one topic (${env.cpus} x ${env.cpu}, Node ${env.node}, all on 127.0.0.1)`);
  out.push('');
  out.push(
    `Each step: ${TIMING.warmupS} s warm-up + ${TIMING.stepS} s measured; latency = client receipt - publisher's send (matched by correlation id). Pass = p99 <= ${P99_LIMIT_MS} ms and >= ${DELIVERY_LIMIT_PCT}% delivered. ` +
      `CPU in % of one core; server CPU per message over the whole step. ours${opts.workers > 0 ? ` = bondx all (ingest on Redis) + bondx gateway --workers ${opts.workers}` : ' = one bondx all process'}; centrifugo on the ${opts.centrifugoRedis ? 'Redis' : 'memory'} engine.`,
  );
  out.push('');
  out.push(
    table(
      ['peer', 'offered msg/s', 'delivered msg/s', 'delivered', 'p50 ms', 'p95 ms', 'p99 ms', 'server CPU', 'server us/msg', 'clients CPU (busiest)', 'publisher CPU', 'other CPU (steal)', 'msg/frame', 'pass'],
      rows.map((r) => [
        r.peer,
        fmtInt(r.offeredMsgsPerSec),
        fmtInt(r.deliveredMsgsPerSec),
        fmtPct(r.deliveredPct, 2),
        fmtMs(r.latency.p50),
        fmtMs(r.latency.p95),
        fmtMs(r.latency.p99),
        fmtPct(r.serverCpuPct),
        fmtNum(r.serverCpuUsPerMsg, 2),
        `${fmtPct(r.clientCpuPct)} (${fmtPct(r.busiestClientPct)})`,
        fmtPct(r.publisherCpuPct),
        `${fmtPct(r.otherCpuPct)} (${fmtPct(r.stealPct)})`,
        fmtNum(r.msgsPerFrame),
        `${r.pass ? 'yes' : 'no'}${r.noisy ? '*' : ''}`,
      ]),
    ),
  );
  const centrifugo = summaries.find((s) => s.peer === 'centrifugo');
  const joined = summaries.find((s) => s.peer === 'centrifugo/join');
  out.push('');
  out.push(
    table(
      ['peer', 'highest passing offered msg/s', 'delivered there', 'p99 there', 'peak delivered', `server us/msg at ~${fmtInt(CPU_COMPARE_MSGS)} msg/s`, 'vs centrifugo (passing / peak / CPU)'],
      summaries.map((s) => {
        const peer = s.peer === 'ours/batch' || s.peer === 'centrifugo/join' ? joined : centrifugo;
        return [
          s.peer,
          s.bestRate === null ? 'none' : fmtInt(s.bestRate * opts.clients),
          s.bestDelivered === null ? 'n/a' : fmtInt(s.bestDelivered),
          s.bestP99 === null ? 'n/a' : `${fmtMs(s.bestP99)} ms`,
          fmtInt(s.peakDelivered),
          s.cpuUsAtCompare === null ? 'n/a' : fmtNum(s.cpuUsAtCompare, 2),
          s.peer.startsWith('centrifugo') ? '-' : `${ratio(s.bestDelivered, peer?.bestDelivered)} / ${ratio(s.peakDelivered, peer?.peakDelivered)} / ${ratio(s.cpuUsAtCompare, peer?.cpuUsAtCompare)}`,
        ];
      }),
    ),
  );
  if (memory.length > 0) {
    out.push('');
    out.push(table(['peer', 'idle subscribed connections', 'RSS before -> after (MB)', 'RSS per connection'], memory.map((m) => [m.peer, fmtInt(m.connections), `${m.rssBeforeMb.toFixed(1)} -> ${m.rssAfterMb.toFixed(1)}`, `${m.kbPerConnection.toFixed(1)} KB`])));
  }
  if (rows.some((r) => r.noisy)) notes.unshift(`\\* other processes used more than ${NOISY_OTHER_PCT}% of a core during that step (even after re-runs): noisy`);
  if (notes.length > 0) out.push('', ...notes.map((n) => `- ${n}`));
  return out.join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const t0 = Date.now();
  const env = machine();
  const notes: string[] = [];
  let peers = opts.peers;
  if (peers.some((p) => p.startsWith('centrifugo'))) {
    const binary = await centrifugoBinary();
    if (!binary.ok) {
      const note = `Centrifugo skipped: ${binary.reason}`;
      log(`[peers] ${note}`);
      notes.push(note);
      peers = peers.filter((p) => !p.startsWith('centrifugo'));
    }
  }
  log(`[peers] ${opts.clients} clients, offered ${opts.rates.map((r) => fmtInt(r * opts.clients)).join(', ')} msg/s, peers ${peers.join(', ')}; ${env.cpus} x ${env.cpu}`);
  const idleBusy = await waitForQuietMachine(log);
  const rows: Row[] = [];
  const summaries: Summary[] = [];
  for (const peer of peers) {
    const peerRows = await runPeer(peer);
    rows.push(...peerRows);
    summaries.push(summarise(peer, peerRows));
  }
  const memory: Memory[] = [];
  if (opts.idle > 0) for (const peer of ['ours', 'centrifugo'] as const) if (peers.includes(peer)) memory.push(await idleMemory(peer));
  if (peers.includes('bare-sio')) notes.push('bare-sio: socket.io clients (not plain WebSocket) and an in-process publisher, so its CPU includes publishing and no HTTP: a reference, not a like-for-like row');
  if (peers.includes('bare-ws')) notes.push('bare-ws: a `ws` server that frames each posted event once and writes it to every socket (no auth, validation, store or feed): the floor of one frame per message from Node on this machine, a reference, not a product');
  const md = markdown(rows, summaries, memory, env, notes);
  log(`\n${md}\n`);
  const file = writeResults('peers', { durationS: (Date.now() - t0) / 1000, machineBusyBeforePct: idleBusy, config: { ...opts, peers }, rows, summaries, memory, markdown: md }, opts.out);
  log(`Results written to ${file}`);
}

runMain(main);
