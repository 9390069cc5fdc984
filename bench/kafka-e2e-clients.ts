import { io as ioClient, type Socket } from 'socket.io-client';
import { hrNow, LatencyHistogram, serveRpc, type HistogramJson } from './shared.js';

/**
 * Client child of `bench/kafka-e2e.ts`: holds N socket.io-client connections (websocket transport),
 * each subscribed to the same K `prices.*` topics, and records the receipt time of every delta per
 * (connection, event n) of the current step. At the end of a step the parent hands over the produce
 * time and the Redis-publish time of each event; latencies are computed here, so only histograms
 * travel back over IPC.
 */

interface WireEnvelope {
  type?: string;
  topic?: string | null;
  seq?: number | null;
  ts?: string;
  correlation_id?: string | null;
  payload?: unknown;
  meta?: Record<string, unknown>;
}

export interface ClientsConnectArgs {
  /** Gateway base URLs; connections are spread round-robin over them. */
  urls: string[];
  token: string;
  count: number;
  topics: string[];
  batchSize: number | null;
}

export interface ClientsConnectResult {
  connected: number;
  failed: number;
  firstError: string | null;
  ms: number;
}

export interface ClientsBeginArgs {
  step: number;
  /** Upper bound of event n in this step (exclusive). */
  capacity: number;
}

export interface ClientsEndArgs {
  /** Produce time (parent clock, hrNow) per event n; null when not produced. */
  produced: (number | null)[];
  /** Time the parent's Redis observer saw the live PUBLISH of event n (parent clock); null when not seen. */
  published: (number | null)[];
  /** This process's clock minus the parent's (ms): subtracted from every receipt time. */
  clockShift: number;
  /** Date.now() − hrNow() in the parent: converts the delta's `ts` (a Date.now in the projector) to the hr clock. */
  dateShift: number;
  /** Events n in [from, to) are measured (produced after the warm-up). */
  from: number;
  to: number;
  /** Throughput window in the parent's clock. */
  windowStart: number;
  windowEnd: number;
}

export interface ClientsEndResult {
  clients: number;
  /** (client, event) pairs expected for the measured events, and how many arrived. */
  expected: number;
  delivered: number;
  duplicates: number;
  /** Messages (any event of the step) received inside the throughput window. */
  inWindowMsgs: number;
  /** Produce -> client receipt, every measured (client, event). */
  e2e: HistogramJson;
  /** Redis publish (as seen by the parent's observer) -> client receipt. */
  publishToReceipt: HistogramJson;
  /** Commit start (delta `ts`, ms resolution) -> client receipt. */
  commitToReceipt: HistogramJson;
  /** Commit time (epoch ms from the delta's `ts`) per measured event n - from, null if no client got it. */
  commitMs: (number | null)[];
  deltaFrames: number;
  batchFrames: number;
  /** Snapshots with `meta.conflated` (the gateway skipped deltas for a slow client). */
  conflated: number;
  errors: number;
  cpuMs: number;
  elapsedMs: number;
}

const sockets: Socket[] = [];

// Current step: receipt time per (client index, event n) in one flat array (0 = not received).
let prefix = '';
let capacity = 0;
let receipts = new Float64Array(0);
let commitMs = new Float64Array(0);
let duplicates = 0;
/** (client, event) receipts recorded this step, duplicates excluded. */
let received = 0;
let deltaFrames = 0;
let batchFrames = 0;
let conflated = 0;
let errors = 0;
let cpuAtStart = process.cpuUsage();
let startedAt = hrNow();

function record(client: number, env: WireEnvelope, t: number): void {
  const id = env.correlation_id;
  if (prefix === '' || typeof id !== 'string' || !id.startsWith(prefix)) return;
  const n = Number(id.slice(prefix.length));
  if (!Number.isInteger(n) || n < 0 || n >= capacity) return;
  const i = client * capacity + n;
  if (receipts[i] !== 0) {
    duplicates++;
    return;
  }
  receipts[i] = t;
  received++;
  if (commitMs[n] === 0 && typeof env.ts === 'string') commitMs[n] = Date.parse(env.ts);
}

function openSocket(url: string, token: string): Promise<Socket> {
  const socket = ioClient(`${url}/market`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 20_000, auth: { token } });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      socket.close();
      reject(new Error(`${err.message}${err.data ? ` ${JSON.stringify(err.data)}` : ''}`));
    });
  });
}

async function connectOne(index: number, args: ClientsConnectArgs): Promise<void> {
  const url = args.urls[index % args.urls.length] as string;
  const socket = await openSocket(url, args.token);
  socket.on('delta', (env: WireEnvelope) => {
    deltaFrames++;
    record(index, env, hrNow());
  });
  socket.on('batch', (env: WireEnvelope) => {
    const t = hrNow();
    batchFrames++;
    if (Array.isArray(env.payload)) for (const inner of env.payload as WireEnvelope[]) record(index, inner, t);
  });
  socket.on('snapshot', (env: WireEnvelope) => {
    if (env.meta && env.meta.conflated !== undefined) conflated++;
  });
  socket.on('error', () => errors++);
  sockets[index] = socket;
  for (const topic of args.topics) {
    const ack = (await socket.timeout(15_000).emitWithAck('subscribe', { topic, ...(args.batchSize ? { batch_size: args.batchSize } : {}) })) as WireEnvelope;
    if (ack.type !== 'ack') throw new Error(`subscribe ${topic} refused: ${JSON.stringify(ack)}`);
  }
}

async function connect(args: ClientsConnectArgs): Promise<ClientsConnectResult> {
  const t0 = hrNow();
  let failed = 0;
  let firstError: string | null = null;
  // A few at a time: a burst of hundreds of handshakes only measures the accept queue.
  const parallel = 20;
  for (let base = 0; base < args.count; base += parallel) {
    const batch: Promise<void>[] = [];
    for (let i = base; i < Math.min(args.count, base + parallel); i++) batch.push(connectOne(i, args));
    const results = await Promise.allSettled(batch);
    for (const r of results) {
      if (r.status === 'rejected') {
        failed++;
        firstError ??= r.reason instanceof Error ? r.reason.message : String(r.reason);
      }
    }
  }
  return { connected: args.count - failed, failed, firstError, ms: hrNow() - t0 };
}

function disconnect(): null {
  for (const s of sockets) s?.close();
  sockets.length = 0;
  return null;
}

function begin(args: ClientsBeginArgs): null {
  prefix = `b${args.step}-`;
  capacity = args.capacity;
  receipts = new Float64Array(Math.max(1, sockets.length) * capacity);
  commitMs = new Float64Array(capacity);
  duplicates = 0;
  received = 0;
  deltaFrames = 0;
  batchFrames = 0;
  conflated = 0;
  errors = 0;
  cpuAtStart = process.cpuUsage();
  startedAt = hrNow();
  return null;
}

function end(args: ClientsEndArgs): ClientsEndResult {
  const cpu = process.cpuUsage(cpuAtStart);
  const e2e = new LatencyHistogram();
  const pubToRx = new LatencyHistogram();
  const commitToRx = new LatencyHistogram();
  const clients = sockets.length;
  let expected = 0;
  let delivered = 0;
  let inWindowMsgs = 0;
  const shift = args.clockShift;
  for (let c = 0; c < clients; c++) {
    const row = c * capacity;
    for (let n = 0; n < capacity; n++) {
      const raw = receipts[row + n] as number;
      const measured = n >= args.from && n < args.to;
      if (measured) expected++;
      if (raw === 0) continue;
      const t = raw - shift;
      if (t >= args.windowStart && t < args.windowEnd) inWindowMsgs++;
      if (!measured) continue;
      const produced = args.produced[n];
      if (produced === null || produced === undefined) continue;
      delivered++;
      e2e.add(t - produced);
      const published = args.published[n];
      if (published !== null && published !== undefined) pubToRx.add(Math.max(0, t - published));
      const commit = commitMs[n] as number;
      // `ts` is whole milliseconds (truncated): +0.5 ms centres it.
      if (commit !== 0) commitToRx.add(Math.max(0, t - (commit - args.dateShift + 0.5)));
    }
  }
  const commits: (number | null)[] = [];
  for (let n = args.from; n < args.to && n < capacity; n++) commits.push(commitMs[n] === 0 ? null : (commitMs[n] as number));
  prefix = '';
  return {
    clients,
    expected,
    delivered,
    duplicates,
    inWindowMsgs,
    e2e: e2e.toJson(),
    publishToReceipt: pubToRx.toJson(),
    commitToReceipt: commitToRx.toJson(),
    commitMs: commits,
    deltaFrames,
    batchFrames,
    conflated,
    errors,
    cpuMs: (cpu.user + cpu.system) / 1000,
    elapsedMs: hrNow() - startedAt,
  };
}

serveRpc({
  connect: (args: ClientsConnectArgs) => connect(args),
  disconnect: () => disconnect(),
  begin: (args: ClientsBeginArgs) => begin(args),
  end: (args: ClientsEndArgs) => end(args),
  progress: () => ({ received, clients: sockets.length }),
  stop: () => {
    disconnect();
    setTimeout(() => process.exit(0), 50);
    return null;
  },
});
