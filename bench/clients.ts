import type { Socket } from 'socket.io-client';
import { connect as connectSocket } from '../test/support/clients.js';
import { sleep, within } from '../test/support/waits.js';
import { serveRpc } from './lib/rpc.js';
import { hrNow } from './lib/stats.js';
import { batchItems, connectInWaves, StepRecorder, type ConnectResult, type EndStepArgs, type StepStats, type WireEnvelope } from './lib/steps.js';

/**
 * Client child (run.ts, adapter-cost.ts, slow-clients.ts): holds N socket.io-client connections,
 * records every delivered envelope of the current step (StepRecorder), and runs the single-client
 * resume benchmark.
 */

export interface ConnectArgs {
  url: string;
  namespace: string;
  token: string | null;
  count: number;
  /** Subscribe after connecting (our gateway); null for bare or idle clients. */
  subscribe: { topic: string; batch_size: number | null } | null;
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

const sockets: Socket[] = [];
let subscribedClients = 0;
const recorder = new StepRecorder();

const open = (url: string, namespace: string, token: string | null) => connectSocket(url, namespace, token ?? undefined, { timeoutMs: 20_000 });

async function connectOne(args: ConnectArgs): Promise<void> {
  const socket = await open(args.url, args.namespace, args.token);
  sockets.push(socket);
  socket.on('delta', (env: WireEnvelope) => recorder.delta(env));
  socket.on('batch', (env: WireEnvelope) => recorder.batch(env));
  if (args.subscribe) {
    const message = { type: 'subscribe', topic: args.subscribe.topic, ...(args.subscribe.batch_size !== null ? { batch_size: args.subscribe.batch_size } : {}) };
    const ack = (await socket.timeout(20_000).emitWithAck('subscribe', message)) as WireEnvelope;
    if (ack.type !== 'ack') throw new Error(`subscribe refused: ${JSON.stringify(ack)}`);
    subscribedClients++;
  }
}

async function connect(args: ConnectArgs): Promise<ConnectResult> {
  const result = await connectInWaves(args.count, () => connectOne(args));
  if (!args.subscribe) subscribedClients = sockets.length;
  return result;
}

/** One fresh client resumes `expected` entries behind the head; times the ack and the last delta. */
async function resume(args: ResumeArgs): Promise<ResumeResult> {
  const socket = await open(args.url, args.namespace, args.token);
  const targetSeq = args.fromSeq + args.expected;
  let received = 0;
  let contiguous = true;
  let lastSeq: number | null = null;
  let firstSeq: number | null = null;
  let snapshot = false;
  let doneAt = 0;
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const onEntry = (env: WireEnvelope) => {
    const seq = env.seq;
    if (typeof seq !== 'number') return;
    firstSeq ??= seq;
    if (lastSeq !== null && seq !== lastSeq + 1) contiguous = false;
    lastSeq = seq;
    received++;
    if (seq >= targetSeq && doneAt === 0) {
      doneAt = hrNow();
      resolveDone();
    }
  };
  socket.on('delta', onEntry);
  socket.on('batch', (env: WireEnvelope) => batchItems(env).forEach(onEntry));
  socket.on('snapshot', () => (snapshot = true));
  const t0 = hrNow();
  const ack = (await socket.timeout(30_000).emitWithAck('subscribe', { type: 'subscribe', topic: args.topic, resume_from_seq: args.fromSeq, ...(args.batchSize > 1 ? { batch_size: args.batchSize } : {}) })) as WireEnvelope;
  const ackMs = hrNow() - t0;
  if (ack.type !== 'ack') throw new Error(`resume subscribe refused: ${JSON.stringify(ack)}`);
  await within(done, 30_000);
  socket.close();
  return { ackMs, allMs: doneAt > 0 ? doneAt - t0 : Number.NaN, received, contiguous, firstSeq, lastSeq, snapshot };
}

async function closeAll(): Promise<{ closed: number }> {
  const n = sockets.length;
  for (const s of sockets.splice(0)) s.close();
  subscribedClients = 0;
  await sleep(100);
  return { closed: n };
}

serveRpc({
  connect: (a: ConnectArgs) => connect(a),
  beginStep: (a: { step: number }) => recorder.begin(a.step),
  progress: () => ({ received: recorder.received }),
  clients: () => ({ clients: subscribedClients }),
  endStep: (a: EndStepArgs): StepStats => recorder.end(a, subscribedClients),
  resume: (a: ResumeArgs) => resume(a),
  closeAll: () => closeAll(),
});
