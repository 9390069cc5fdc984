import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server as SocketIoServer, type ServerOptions } from 'socket.io';
import type { QuoteEvent } from '../../src/domain/events.js';
import { topicOf } from '../../src/domain/topics.js';
import { entryEnvelope } from '../../src/gateway/envelope.js';
import type { Ingest } from '../../src/ingest/ingest.js';
import { project } from '../../src/projector/project.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { book, ladder, quote } from '../../test/support/events.js';
import { stepEventId } from './steps.js';

/**
 * What the benchmarks run against besides the real system (the kit's startTestSystem / role
 * processes): the benchmark's instrument and events, the envelope our gateway would send for them (to
 * broadcast from a bare Socket.IO server), and that bare server.
 */

export const HOST = '127.0.0.1';
export const BENCH_ISIN = 'IN0020230085';
export const BENCH_TOPIC = topicOf.prices(BENCH_ISIN);

/** Quote n of `step`: its event_id names the event (`b<step>-<n>`), prices wiggle with n. */
export function benchQuote(step: number, n: number, isin = BENCH_ISIN): QuoteEvent & Record<string, unknown> {
  const wiggle = (n % 50) / 1000;
  return quote(isin, Math.round((99.5 + wiggle) * 1000) / 1000, Math.round((99.6 + wiggle) * 1000) / 1000, stepEventId(step, n));
}

/** Book update n of `step`, `depth` levels on alternating sides. */
export function benchBook(step: number, n: number, depth: number, isin = BENCH_ISIN) {
  const side = n % 4 === 1 ? 'bid' : 'ask';
  return book(isin, side, ladder(side, depth, n), stepEventId(step, n));
}

/**
 * The envelope our gateway sends for `event` as entry `seq`: the real prices reducer's delta (on an
 * empty state, which is all a quote's l1 depends on) in the real envelope.
 */
export function quoteEnvelope(event: QuoteEvent, seq: number, epoch = 'bench'): Envelope {
  const [change] = project(event, new Map()).changes;
  if (!change) throw new Error(`the prices reducer refused ${event.event_id}`);
  return entryEnvelope({ topic: change.topic, epoch, seq, type: change.type, ts: new Date().toISOString(), event_ts: event.ts, event_id: event.event_id, payload: change.payload, hash: '' });
}

/** Submits without waiting (the publisher must not be paced by the system's latency), counting events not applied. */
export function submitter(ingest: Ingest): { submit(event: unknown): void; errors(): number } {
  let errors = 0;
  return {
    submit(event) {
      ingest.submit(event, 'bench').then(
        (outcome) => {
          if (outcome.status !== 'applied') errors++;
        },
        () => errors++,
      );
    },
    errors: () => errors,
  };
}

export interface BareServer {
  io: SocketIoServer;
  http: HttpServer;
  url: string;
  close(): Promise<void>;
}

/** A plain Socket.IO server on a free loopback port: websocket transport, no compression, as our gateway's /market. */
export async function startBareServer(options: Partial<ServerOptions> = {}): Promise<BareServer> {
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false, ...options });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, HOST, () => resolve());
  });
  return { io, http, url: `http://${HOST}:${(http.address() as AddressInfo).port}`, close: () => new Promise<void>((resolve) => io.close(() => resolve())) };
}
