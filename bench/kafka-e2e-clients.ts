import type { Socket } from 'socket.io-client';
import { connect as connectSocket } from '../test/support/clients.js';
import { serveRpc } from './lib/rpc.js';
import { hrNow, LatencyHistogram, ownCpuMs, type HistogramJson } from './lib/stats.js';
import { batchItems, connectInWaves, eventNumber, stepPrefix, type ConnectResult, type WireEnvelope } from './lib/steps.js';

/**
 * Client child of `bench/kafka-e2e.ts`: holds N socket.io-client connections (websocket transport),
 * each subscribed to the same K `prices.*` topics, and records the receipt time of every delta per
 * (connection, event n) of the current step. At the end of a step the parent hands over the produce
 * time and the Redis-publish time of each event; latencies are computed here, so only histograms
 * travel back over IPC.
 */

export interface ClientsConnectArgs {
  /** Gateway base URLs; connections are spread round-robin over them. */
  urls: string[];
  token: string;
  count: number;
  topics: string[];
  batchSize: number | null;
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
  /** Record time (the entry's `ts`: the Kafka record timestamp, ms resolution) -> client receipt. */
  recordTsToReceipt: HistogramJson;
  /** Record time (epoch ms from the entry's `ts`) per measured event n - from, null if no client got it. */
  recordTsMs: (number | null)[];
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
let recordTsMs = new Float64Array(0);
let duplicates = 0;
/** (client, event) receipts recorded this step, duplicates excluded. */
let received = 0;
let deltaFrames = 0;
let batchFrames = 0;
let conflated = 0;
let errors = 0;
let cpuAtStart = ownCpuMs();
let startedAt = hrNow();

function record(client: number, env: WireEnvelope, t: number): void {
  const n = eventNumber(env.correlation_id, prefix);
  if (n === undefined || n >= capacity) return;
  const i = client * capacity + n;
  if (receipts[i] !== 0) {
    duplicates++;
    return;
  }
  receipts[i] = t;
  received++;
  if (recordTsMs[n] === 0 && typeof env.ts === 'string') recordTsMs[n] = Date.parse(env.ts);
}

async function connectOne(index: number, args: ClientsConnectArgs): Promise<void> {
  const url = args.urls[index % args.urls.length] as string;
  const socket = await connectSocket(url, '/market', args.token, { timeoutMs: 20_000 }).catch((err: Error & { data?: unknown }) => {
    throw new Error(`${err.message}${err.data ? ` ${JSON.stringify(err.data)}` : ''}`);
  });
  socket.on('delta', (env: WireEnvelope) => {
    deltaFrames++;
    record(index, env, hrNow());
  });
  socket.on('batch', (env: WireEnvelope) => {
    const t = hrNow();
    batchFrames++;
    for (const inner of batchItems(env)) record(index, inner, t);
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

function connect(args: ClientsConnectArgs): Promise<ConnectResult> {
  // A few at a time: a burst of hundreds of handshakes only measures the accept queue.
  return connectInWaves(args.count, (i) => connectOne(i, args), 20);
}

function closeAll(): void {
  for (const s of sockets) s?.close();
  sockets.length = 0;
}

function begin(args: ClientsBeginArgs): void {
  prefix = stepPrefix(args.step);
  capacity = args.capacity;
  receipts = new Float64Array(Math.max(1, sockets.length) * capacity);
  recordTsMs = new Float64Array(capacity);
  duplicates = 0;
  received = 0;
  deltaFrames = 0;
  batchFrames = 0;
  conflated = 0;
  errors = 0;
  cpuAtStart = ownCpuMs();
  startedAt = hrNow();
}

function end(args: ClientsEndArgs): ClientsEndResult {
  const e2e = new LatencyHistogram();
  const pubToRx = new LatencyHistogram();
  const recordTsToRx = new LatencyHistogram();
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
      const recordTs = recordTsMs[n] as number;
      // `ts` is whole milliseconds (truncated): +0.5 ms centres it.
      if (recordTs !== 0) recordTsToRx.add(Math.max(0, t - (recordTs - args.dateShift + 0.5)));
    }
  }
  const recordTimes: (number | null)[] = [];
  for (let n = args.from; n < args.to && n < capacity; n++) recordTimes.push(recordTsMs[n] === 0 ? null : (recordTsMs[n] as number));
  prefix = '';
  return {
    clients,
    expected,
    delivered,
    duplicates,
    inWindowMsgs,
    e2e: e2e.toJson(),
    publishToReceipt: pubToRx.toJson(),
    recordTsToReceipt: recordTsToRx.toJson(),
    recordTsMs: recordTimes,
    deltaFrames,
    batchFrames,
    conflated,
    errors,
    cpuMs: ownCpuMs() - cpuAtStart,
    elapsedMs: hrNow() - startedAt,
  };
}

serveRpc({
  connect: (args: ClientsConnectArgs) => connect(args),
  closeAll: () => closeAll(),
  begin: (args: ClientsBeginArgs) => begin(args),
  end: (args: ClientsEndArgs) => end(args),
  progress: () => ({ received, clients: sockets.length }),
});
