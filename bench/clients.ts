import { io as ioClient, type Socket } from 'socket.io-client';
import { StepRecorder, type WireEnvelope } from './recorder.js';
import {
  hrNow,
  connectInWaves,
  serveRpc,
  sleep,
  type ConnectArgs,
  type ConnectResult,
  type EndStepArgs,
  type ResumeArgs,
  type ResumeResult,
  type StepStats,
} from './shared.js';

/**
 * Client child: holds N socket.io-client connections, records (event n, receipt time) for every
 * delivered envelope of the current step, and turns them into latency/delivery statistics once the
 * parent hands over the server's publish times. Also runs the single-client resume benchmark.
 */

const sockets: Socket[] = [];
let subscribedClients = 0;
const recorder = new StepRecorder();

function openSocket(url: string, namespace: string, token: string | null): Promise<Socket> {
  const socket = ioClient(`${url}${namespace}`, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: false,
    timeout: 20_000,
    ...(token !== null ? { auth: { token } } : {}),
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error) => {
      socket.close();
      reject(err);
    });
  });
}

async function connectOne(args: ConnectArgs): Promise<void> {
  const socket = await openSocket(args.url, args.namespace, args.token);
  sockets.push(socket);
  socket.on('delta', (env: WireEnvelope) => recorder.delta(env));
  socket.on('batch', (env: WireEnvelope) => recorder.batch(env));
  if (args.subscribe) {
    const message = { type: 'subscribe', topic: args.subscribe.topic, ...(args.subscribe.batch_size !== null ? { batch_size: args.subscribe.batch_size } : {}) };
    const ack = (await socket.timeout(20_000).emitWithAck('subscribe', message)) as WireEnvelope & { code?: string };
    if (ack.type !== 'ack') throw new Error(`subscribe refused: ${JSON.stringify(ack)}`);
    subscribedClients++;
  }
}

async function connect(args: ConnectArgs): Promise<ConnectResult> {
  const result = await connectInWaves(args.count, () => connectOne(args));
  if (!args.subscribe) subscribedClients = sockets.length;
  return result;
}

function beginStep(args: { step: number }): null {
  recorder.begin(args.step);
  return null;
}

function progress(): { received: number } {
  return { received: recorder.received };
}

function endStep(args: EndStepArgs): StepStats {
  return recorder.end(args, subscribedClients);
}

/** One fresh client resumes `expected` entries behind the head; times the ack and the last delta. */
async function resume(args: ResumeArgs): Promise<ResumeResult> {
  const socket = await openSocket(args.url, args.namespace, args.token);
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
  socket.on('batch', (env: WireEnvelope) => {
    if (Array.isArray(env.payload)) for (const inner of env.payload as WireEnvelope[]) onEntry(inner);
  });
  socket.on('snapshot', () => (snapshot = true));
  const t0 = hrNow();
  const ack = (await socket.timeout(30_000).emitWithAck('subscribe', { type: 'subscribe', topic: args.topic, resume_from_seq: args.fromSeq, ...(args.batchSize > 1 ? { batch_size: args.batchSize } : {}) })) as WireEnvelope;
  const ackMs = hrNow() - t0;
  if (ack.type !== 'ack') throw new Error(`resume subscribe refused: ${JSON.stringify(ack)}`);
  await Promise.race([done, sleep(30_000)]);
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
  beginStep: (a: { step: number }) => beginStep(a),
  progress: () => progress(),
  clients: () => ({ clients: subscribedClients }),
  endStep: (a: EndStepArgs) => endStep(a),
  resume: (a: ResumeArgs) => resume(a),
  closeAll: () => closeAll(),
});
