import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { QuoteEvent } from '../src/domain/events.js';
import { topicOf } from '../src/domain/topics.js';
import { controlEnvelope } from '../src/gateway/envelope.js';
import { textFrame } from '../src/transports/websocket/wire.js';
import { HOST, quoteEnvelope } from './lib/system.js';

/**
 * The `bare-ws` peer of `bench/peers.ts`: the floor of delivering one message per WebSocket frame from
 * Node, not a product. Clients on `/api/v1/ws/market/{isin}` get one subscribe ack; every event of a
 * `POST /api/v1/events` becomes our gateway's envelope, framed once, and is written to every socket
 * straight onto the upgraded TCP socket. No auth, validation, store, feed or metrics.
 *
 * Writes are corked per event-loop turn as our WsLink does (one writev per socket per turn): cheaper
 * than a plain socket.write per frame (BARE_WS_CORK=0). At 200 ev/s x 250 clients on a busy 2-core box,
 * 2026-12-02: corked 6.2-6.4 us/msg, p99 110-170 ms; per-frame writes 9.7 us/msg and fell 1.5 s behind.
 */

const CORK = process.env.BARE_WS_CORK !== '0';
const PATH = /^\/api\/v1\/ws\/market\/([^/?]+)/;

const sockets = new Set<Duplex>();
let seq = 0;
let corked = false;

const uncorkAll = () => {
  corked = false;
  for (const socket of sockets) socket.uncork();
};

function deliver(event: QuoteEvent): void {
  const frame = textFrame(JSON.stringify(quoteEnvelope(event, ++seq)));
  if (CORK && !corked) {
    corked = true;
    for (const socket of sockets) socket.cork();
    setImmediate(uncorkAll);
  }
  for (const socket of sockets) if (socket.writable) socket.write(frame);
}

const http = createServer((req, res) => {
  if (req.method !== 'POST') return void res.end('ok');
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const events = JSON.parse(Buffer.concat(chunks).toString('utf8')) as QuoteEvent[];
    for (const event of events) deliver(event);
    res.end(`{"accepted":${events.length}}`);
  });
});

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
http.on('upgrade', (req, socket: Duplex, head: Buffer) => {
  const isin = PATH.exec(req.url ?? '')?.[1] ?? '';
  wss.handleUpgrade(req, socket, head, (ws) => {
    const topic = topicOf.prices(isin);
    socket.write(textFrame(JSON.stringify(controlEnvelope('ack', { action: 'subscribe', topic }, { topic, seq }))));
    sockets.add(socket);
    ws.on('close', () => sockets.delete(socket));
  });
});

http.listen(Number(process.env.PORT), HOST);
