import { WebSocket, type RawData } from 'ws';
import { sleep } from '../test/support/waits.js';
import { serveRpc } from './lib/rpc.js';
import { hrNow } from './lib/stats.js';
import { connectInWaves, StepRecorder, stepPrefix, type ConnectResult, type EndStepArgs, type StepStats, type WireEnvelope } from './lib/steps.js';

/**
 * Client child of `bench/peers.ts`: N plain WebSocket connections to one peer, either OUR
 * `/api/v1/ws/market/{isin}` or Centrifugo's `/connection/uni_websocket` (JSON protocol, the channel
 * subscribed server-side by the token's `channels` claim). Both carry our envelope (Centrifugo as a
 * publication's `data`), so a delivered message is found the same way on both: its `correlation_id`.
 *
 * The hot path parses only what a step needs: it scans each frame's bytes for
 * `"correlation_id":"b<step>-` and reads the event number after it, with no JSON.parse, so the load
 * generator stays cheap next to the servers it measures. A frame may hold several messages (our
 * `batch` frames, Centrifugo's joined pushes): each occurrence counts.
 */

export type PeerProtocol = 'ours' | 'centrifugo';

export interface PeerConnectArgs {
  protocol: PeerProtocol;
  /** ws:// URL of the endpoint (ours: with ?token=). */
  url: string;
  count: number;
  /** Centrifugo: the connection token sent as the connect request. */
  token: string | null;
  /** Ours: the topic the path subscribes (its ack makes the connection ready). */
  topic: string;
  /** Ours: re-subscribe with this batch_size (0: one message per frame). */
  batchSize: number;
}

export interface PeerStepStats extends StepStats {
  /** Text frames the connections received during the step (any kind). */
  frames: number;
}

const sockets: WebSocket[] = [];
const recorder = new StepRecorder();
let recorderPrefix = stepPrefix(0);
let needle = Buffer.from(`"correlation_id":"${recorderPrefix}`);
let frames = 0;
let framesAtBegin = 0;

const QUOTE = 0x22;
const ZERO = 0x30;
const NINE = 0x39;

/** Records every event number of the current step found in `buf` (a delivered message each). */
function scan(buf: Buffer, t: number): void {
  frames++;
  for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at)) {
    at += needle.length;
    let n = 0;
    let digits = 0;
    for (let c = buf[at]; c !== undefined && c >= ZERO && c <= NINE; c = buf[++at]) {
      n = n * 10 + (c - ZERO);
      digits++;
    }
    if (digits > 0 && buf[at] === QUOTE) recorder.delta({ correlation_id: `${recorderPrefix}${n}` }, t);
  }
}

const bytesOf = (data: RawData): Buffer => (Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data));

/** Opens one connection and resolves once it is subscribed (ours: the ack(s); Centrifugo: the connect reply). */
function openOne(args: PeerConnectArgs): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(args.url, { perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: 20_000 });
    const timer = setTimeout(() => fail(new Error('not subscribed within 20 s')), 20_000);
    let acks = 0;
    const fail = (err: Error) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    // Until ready, frames are parsed whole (a handful per connection); after it only scanned.
    const setUp = (data: RawData) => {
      const env = JSON.parse(bytesOf(data).toString('utf8')) as WireEnvelope & { connect?: unknown; disconnect?: { reason?: string } };
      if (args.protocol === 'centrifugo') {
        if (env.connect) ready();
        else if (env.disconnect) fail(new Error(`centrifugo refused: ${env.disconnect.reason ?? JSON.stringify(env)}`));
        return;
      }
      if (env.type === 'error') return fail(new Error(`refused: ${JSON.stringify(env)}`));
      if (env.type !== 'ack') return;
      acks++;
      if (acks === 1 && args.batchSize > 1) ws.send(JSON.stringify({ type: 'subscribe', topic: args.topic, batch_size: args.batchSize }));
      else ready();
    };
    const ready = () => {
      clearTimeout(timer);
      ws.off('message', setUp);
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (!isBinary) scan(bytesOf(data), hrNow());
      });
      sockets.push(ws);
      resolve();
    };
    ws.on('message', setUp);
    ws.once('open', () => {
      if (args.protocol === 'centrifugo') ws.send(JSON.stringify({ token: args.token }));
    });
    ws.once('error', fail);
    ws.once('close', (code) => fail(new Error(`closed with ${code} before subscribing`)));
  });
}

function beginStep(args: { step: number }): void {
  recorder.begin(args.step);
  recorderPrefix = stepPrefix(args.step);
  needle = Buffer.from(`"correlation_id":"${recorderPrefix}`);
  framesAtBegin = frames;
}

function endStep(args: EndStepArgs): PeerStepStats {
  return { ...recorder.end(args, sockets.length), frames: frames - framesAtBegin };
}

async function closeAll(): Promise<{ closed: number }> {
  const n = sockets.length;
  for (const ws of sockets.splice(0)) {
    ws.removeAllListeners('close');
    ws.terminate();
  }
  await sleep(100);
  return { closed: n };
}

serveRpc({
  connect: (a: PeerConnectArgs): Promise<ConnectResult> => connectInWaves(a.count, () => openOne(a)),
  beginStep: (a: { step: number }) => beginStep(a),
  progress: () => ({ received: recorder.received }),
  clients: () => ({ clients: sockets.length }),
  endStep: (a: EndStepArgs) => endStep(a),
  closeAll: () => closeAll(),
});
