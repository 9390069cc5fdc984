import type { Socket as NetSocket } from 'node:net';
import { WebSocket, type RawData } from 'ws';
import { sleep } from '../test/support/waits.js';
import { serveRpc } from './lib/rpc.js';
import { hrNow } from './lib/stats.js';
import { connectInWaves, StepRecorder, type ConnectResult, type EndStepArgs, type StepStats, type WireEnvelope } from './lib/steps.js';

/**
 * Client child for the plain-WebSocket API (`/api/v1/ws/{stream}/{id}`): holds N `ws` connections
 * (offering permessage-deflate, as browsers do), records deltas like `clients.ts`, counts bytes read
 * from the TCP sockets, and can stall connections (stop reading) to play slow consumers.
 * Used by bench/compression.ts and bench/slow-clients.ts.
 */

export interface WsConnectArgs {
  /** Full URL, e.g. ws://127.0.0.1:1234/api/v1/ws/market/IN0020230085?token=... */
  url: string;
  count: number;
  /** Topic subscribed by the path (the ack awaited before the connection counts as ready). */
  topic: string;
  /** More topics subscribed (awaiting each ack) before the connection counts as ready. */
  extraTopics?: string[];
  /** Stop reading once subscribed: these connections do not record deltas. */
  stall: boolean;
}

export interface WsStepStats extends StepStats {
  /** Bytes read from the recording connections' TCP sockets during the step (frames, headers, pings). */
  bytesRead: number;
  /** Text frames received by the recording connections during the step (any type). */
  frames: number;
}

export interface ReleaseResult {
  stalled: number;
  /** Stalled connections that, once reading again, got a snapshot marked `meta.conflated`. */
  conflated: number;
  /** Deltas skipped according to those snapshots' `meta.conflated` ranges. */
  skipped: number;
  /** Stalled connections closed by the server, by close code. */
  closed: Record<string, number>;
  /** Stalled connections neither conflated nor closed within the timeout. */
  neither: number;
  /** Deltas the stalled connections received after resuming (data written before the pause took effect included). */
  deltasAfterResume: number;
  /** Bytes each stalled connection read in all, on average (what kernel buffers and the server's queue held for it). */
  bytesPerStalled: number;
}

interface Conn {
  ws: WebSocket;
  socket: NetSocket | null;
  stalled: boolean;
  conflated: boolean;
  skipped: number;
  closeCode: number | null;
  /** Pending acks by topic. */
  waiting: Map<string, (env: WireEnvelope) => void>;
}

const conns: Conn[] = [];
const recorder = new StepRecorder();
let frames = 0;
let bytesAtBegin = 0;
let framesAtBegin = 0;
let deltasAfterResume = 0;

const recording = () => conns.filter((c) => !c.stalled);

function bytesRead(): number {
  return recording().reduce((a, c) => a + (c.socket?.bytesRead ?? 0), 0);
}

const textOf = (data: RawData): string => (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)).toString('utf8');

function onMessage(conn: Conn, data: RawData, isBinary: boolean): void {
  if (isBinary) return;
  const t = hrNow();
  const env = JSON.parse(textOf(data)) as WireEnvelope;
  if (conn.stalled) {
    if (env.type === 'delta') deltasAfterResume++;
    const range = env.meta?.conflated as { from?: number; to?: number } | undefined;
    if (env.type === 'snapshot' && range && typeof range.from === 'number' && typeof range.to === 'number') {
      conn.conflated = true;
      conn.skipped += range.to - range.from + 1;
    }
    return;
  }
  frames++;
  if (env.type === 'delta') recorder.delta(env, t);
  else if (env.type === 'batch') recorder.batch(env, t);
  else if ((env.type === 'ack' || env.type === 'error') && typeof env.topic === 'string') {
    const waiter = conn.waiting.get(env.topic);
    conn.waiting.delete(env.topic);
    waiter?.(env);
  }
}

function awaitReply(conn: Conn, topic: string, timeoutMs = 20_000): Promise<WireEnvelope> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply for ${topic} in ${timeoutMs} ms`)), timeoutMs);
    conn.waiting.set(topic, (env) => {
      clearTimeout(timer);
      resolve(env);
    });
  });
}

async function openOne(args: WsConnectArgs): Promise<void> {
  const ws = new WebSocket(args.url, { perMessageDeflate: true, handshakeTimeout: 20_000 });
  const conn: Conn = { ws, socket: null, stalled: false, conflated: false, skipped: 0, closeCode: null, waiting: new Map() };
  ws.on('upgrade', (res) => (conn.socket = res.socket as NetSocket));
  ws.on('message', (data: RawData, isBinary: boolean) => onMessage(conn, data, isBinary));
  ws.on('close', (code) => (conn.closeCode = code));
  ws.on('error', () => undefined);
  const ack = awaitReply(conn, args.topic);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const reply = await ack;
  if (reply.type !== 'ack') throw new Error(`subscribe refused: ${JSON.stringify(reply)}`);
  for (const topic of args.extraTopics ?? []) {
    const extra = awaitReply(conn, topic);
    ws.send(JSON.stringify({ type: 'subscribe', topic }));
    const r = await extra;
    if (r.type !== 'ack') throw new Error(`subscribe to ${topic} refused: ${JSON.stringify(r)}`);
  }
  conns.push(conn);
  if (args.stall) {
    conn.stalled = true;
    ws.pause();
  }
}

function connect(args: WsConnectArgs): Promise<ConnectResult> {
  return connectInWaves(args.count, () => openOne(args));
}

export interface BareStalledArgs {
  /** Engine.IO websocket URL, e.g. ws://127.0.0.1:1234/socket.io/?EIO=4&transport=websocket&stalled=1 */
  url: string;
  count: number;
}

/**
 * A stalled client of a bare Socket.IO server, speaking raw Engine.IO over `ws`: answers the open
 * packet (`0{...}`) with `40` (connect to namespace `/`), waits for the server's `40{...}`, then stops
 * reading at the TCP level (so it also stops answering pings; the server needs a long pingTimeout).
 */
async function openBareStalled(args: BareStalledArgs): Promise<void> {
  const ws = new WebSocket(args.url, { perMessageDeflate: false, handshakeTimeout: 20_000 });
  const conn: Conn = { ws, socket: null, stalled: true, conflated: false, skipped: 0, closeCode: null, waiting: new Map() };
  ws.on('upgrade', (res) => (conn.socket = res.socket as NetSocket));
  ws.on('close', (code) => (conn.closeCode = code));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no Socket.IO connect reply in 20 s')), 20_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    ws.once('error', fail);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary) return;
      const text = textOf(data);
      if (text.startsWith('0{')) ws.send('40');
      else if (text.startsWith('40')) {
        clearTimeout(timer);
        ws.removeAllListeners('message');
        ws.off('error', fail);
        resolve();
      } else if (text.startsWith('44')) fail(new Error(`namespace connect refused: ${text}`));
    });
  });
  conns.push(conn);
  ws.pause();
}

/** Re-subscribes every recording connection with `compression` on or off; resolves when all acked. */
async function setCompression(args: { topic: string; on: boolean }): Promise<{ acked: number; refused: number }> {
  let acked = 0;
  let refused = 0;
  await Promise.all(
    recording().map(async (conn) => {
      const reply = awaitReply(conn, args.topic);
      conn.ws.send(JSON.stringify({ type: 'subscribe', topic: args.topic, compression: args.on }));
      if ((await reply).type === 'ack') acked++;
      else refused++;
    }),
  );
  return { acked, refused };
}

function beginStep(args: { step: number }): void {
  recorder.begin(args.step);
  bytesAtBegin = bytesRead();
  framesAtBegin = frames;
}

function endStep(args: EndStepArgs): WsStepStats {
  return { ...recorder.end(args, recording().length), bytesRead: bytesRead() - bytesAtBegin, frames: frames - framesAtBegin };
}

function stalledBytes(stalled: Conn[]): number {
  return stalled.reduce((a, c) => a + (c.socket?.bytesRead ?? 0), 0);
}

/** Stalled connections read again; waits until each got its conflated snapshot or was closed (or the timeout). */
async function release(args: { timeoutMs: number }): Promise<ReleaseResult> {
  const stalled = conns.filter((c) => c.stalled);
  for (const c of stalled) c.ws.resume();
  const until = hrNow() + args.timeoutMs;
  while (hrNow() < until && stalled.some((c) => !c.conflated && c.closeCode === null)) await sleep(50);
  // Whatever was still buffered for the unpaused ones arrives meanwhile; let reading settle.
  for (let last = -1, now = stalledBytes(stalled); now !== last && hrNow() < until; last = now, now = stalledBytes(stalled)) await sleep(200);
  const closed: Record<string, number> = {};
  for (const c of stalled) if (c.closeCode !== null) closed[c.closeCode] = (closed[c.closeCode] ?? 0) + 1;
  return {
    stalled: stalled.length,
    conflated: stalled.filter((c) => c.conflated).length,
    skipped: stalled.reduce((a, c) => a + c.skipped, 0),
    closed,
    neither: stalled.filter((c) => !c.conflated && c.closeCode === null).length,
    deltasAfterResume,
    bytesPerStalled: stalled.length > 0 ? stalledBytes(stalled) / stalled.length : 0,
  };
}

async function closeAll(): Promise<{ closed: number }> {
  const n = conns.length;
  for (const c of conns.splice(0)) c.ws.terminate();
  await sleep(100);
  return { closed: n };
}

serveRpc({
  connect: (a: WsConnectArgs) => connect(a),
  connectBareStalled: (a: BareStalledArgs) => connectInWaves(a.count, () => openBareStalled(a)),
  setCompression: (a: { topic: string; on: boolean }) => setCompression(a),
  beginStep: (a: { step: number }) => beginStep(a),
  progress: () => ({ received: recorder.received }),
  clients: () => ({ clients: recording().length }),
  endStep: (a: EndStepArgs) => endStep(a),
  release: (a: { timeoutMs: number }) => release(a),
  closeAll: () => closeAll(),
});
