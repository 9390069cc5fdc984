import { createWriteStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config/config.js';
import { replayLine, snapshotEnvelope } from '../gateway/envelope.js';
import { silentLogger } from '../observability/logger.js';
import { ClientError } from '../protocol/errors.js';
import { historyFor, replayKafkaOptions } from '../replay/kafka-history.js';
import { planReplay, replayEncoder, runReplay, writableSink, type ReplayEnd, type ReplayProgress } from '../replay/replay.js';
import { parseReplayRequest, parseStateRequest, REPLAY_PARAMS, type ReplayParams, type ReplayRequest } from '../replay/request.js';
import { stateAt } from '../replay/state.js';
import { RedisTopicStore } from '../store/redis/redis-store.js';

/**
 * `bondx replay <topic>`: a topic's history as NDJSON or CSV, read straight from Redis (REDIS_URL,
 * REDIS_PREFIX) or through a gateway's `GET /api/v1/replay` (--server, --token). Same request parser and
 * writers as the HTTP route, so both give the same bytes. Exit 0 (what exists was written; the summary
 * names any missing part), 1 on a failure, 2 on a bad request; always one line on stderr saying why.
 */

export interface ReplayCliOptions {
  fromSeq?: string;
  toSeq?: string;
  since?: string;
  until?: string;
  format?: string;
  source?: string;
  epoch?: string;
  /** The state as of this instant instead of a range (one snapshot envelope line). */
  at?: string;
  out?: string;
  server?: string;
  token?: string;
  progress?: boolean;
}

class ReplayFailure extends Error {}

export async function replayCommand(config: () => Config, topic: string, opts: ReplayCliOptions): Promise<number> {
  const params: ReplayParams = { topic, from_seq: opts.fromSeq, to_seq: opts.toSeq, since: opts.since, until: opts.until, format: opts.format, source: opts.source, epoch: opts.epoch };
  if (opts.at !== undefined) {
    try {
      return await stateCommand(config, topic, opts);
    } catch (err) {
      process.stderr.write(`bondx replay: ${err instanceof ClientError ? String(err.details.reason) : (err as Error).message}\n`);
      // A request that can not be asked (ClientError) is a usage error; anything else a failure.
      return err instanceof ClientError ? 2 : 1;
    }
  }
  let request: ReplayRequest;
  try {
    request = parseReplayRequest(params);
    if (opts.server !== undefined && !opts.token) throw new ReplayFailure('--server needs --token (a token with role auditor or operator)');
  } catch (err) {
    process.stderr.write(`bondx replay: ${err instanceof ClientError ? String(err.details.reason) : (err as Error).message}\n`);
    return 2;
  }
  const out: Writable = opts.out ? createWriteStream(opts.out) : process.stdout;
  const progress = opts.progress || process.stderr.isTTY ? progressLine() : undefined;
  try {
    const end = opts.server !== undefined ? await viaServer(opts.server, opts.token as string, params, out, progress) : await fromRedis(config(), request, out, progress);
    if (opts.out) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    progress?.done();
    if (progress || end.missing.length > 0) process.stderr.write(`${summary(end)}\n`);
    return 0;
  } catch (err) {
    progress?.done();
    process.stderr.write(`bondx replay: ${err instanceof ClientError ? String(err.details.reason) : (err as Error).message}\n`);
    return 1;
  }
}

async function fromRedis(cfg: Config, request: ReplayRequest, out: Writable, progress: Progress | undefined): Promise<ReplayEnd> {
  if (!cfg.REDIS_URL) throw new ReplayFailure('reads Redis: set REDIS_URL (and REDIS_PREFIX), or use --server URL --token TOKEN against a running gateway (an in-memory npm start has its history in its own memory)');
  const store = new RedisTopicStore(cfg.REDIS_URL, { prefix: cfg.REDIS_PREFIX });
  try {
    const history = historyFor(store, cfg.KAFKA_BROKERS ? replayKafkaOptions(cfg, silentLogger) : undefined, request.source, request.epoch);
    try {
      const plan = await planReplay(history, request);
      return await runReplay(history, plan, replayEncoder(request.format, request.topic, replayLine), writableSink(out), progress?.update);
    } finally {
      await history.close();
    }
  } finally {
    await store.close();
  }
}

/**
 * `--at T`: the snapshot envelope a client subscribing at T was sent, as one JSON line: from Redis (and
 * Kafka, KAFKA_BROKERS, before its last entry) or through the gateway's GET /api/v1/replay/state.
 */
async function stateCommand(config: () => Config, topic: string, opts: ReplayCliOptions): Promise<number> {
  if ([opts.fromSeq, opts.toSeq, opts.since, opts.until].some((v) => v !== undefined)) throw new ClientError('INVALID_MESSAGE', { reason: '--at gives a state, not a range: drop --from-seq, --to-seq, --since and --until' });
  const request = parseStateRequest({ topic, at: opts.at });
  if (opts.server !== undefined && !opts.token) throw new ClientError('INVALID_MESSAGE', { reason: '--server needs --token (a token with role auditor or operator)' });
  const out: Writable = opts.out ? createWriteStream(opts.out) : process.stdout;
  try {
    let line: string;
    if (opts.server !== undefined) {
      const url = new URL('/api/v1/replay/state', opts.server);
      url.searchParams.set('topic', request.topic);
      url.searchParams.set('at', request.at);
      const res = await fetch(url, { headers: { authorization: `Bearer ${opts.token}` } });
      const body = await res.text();
      if (res.status !== 200) throw new ReplayFailure(`${opts.server} answered HTTP ${res.status}${errorLine(body)}`);
      line = body;
    } else {
      const cfg = config();
      if (!cfg.REDIS_URL) throw new ReplayFailure('reads Redis: set REDIS_URL (and REDIS_PREFIX, KAFKA_BROKERS), or use --server URL --token TOKEN');
      const store = new RedisTopicStore(cfg.REDIS_URL, { prefix: cfg.REDIS_PREFIX });
      try {
        const snapshot = await stateAt(store, cfg.KAFKA_BROKERS ? replayKafkaOptions(cfg, silentLogger) : undefined, request.topic, request.at);
        line = JSON.stringify(snapshotEnvelope(snapshot, snapshot.state, {}, null));
      } finally {
        await store.close();
      }
    }
    await new Promise<void>((resolve, reject) => out.write(`${line}\n`, (err) => (err ? reject(err) : resolve())));
    if (opts.out) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    return 0;
  } catch (err) {
    if (err instanceof ClientError && err.code !== 'INVALID_MESSAGE') throw new ReplayFailure(String(err.details.reason));
    throw err;
  }
}

/** Streams the gateway's answer to `out` (pipeline: backpressure end to end); the trailer says what was served. */
async function viaServer(server: string, token: string, params: ReplayParams, out: Writable, progress: Progress | undefined): Promise<ReplayEnd> {
  const url = new URL('/api/v1/replay', server);
  for (const name of REPLAY_PARAMS) if (params[name] !== undefined) url.searchParams.set(name, params[name]);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    send(url, { headers: { authorization: `Bearer ${token}` } }, resolve).on('error', reject).end();
  });
  if (res.statusCode !== 200) {
    let body = '';
    for await (const chunk of res) body += String(chunk);
    throw new ReplayFailure(`${server} answered HTTP ${res.statusCode ?? '?'}${errorLine(body)}`);
  }
  const planned = (JSON.parse(String(res.headers['x-replay-plan'] ?? '{}')) as { from_seq?: number; to_seq?: number });
  const total = Math.max(0, (planned.to_seq ?? 0) - (planned.from_seq ?? 1) + 1);
  // Lines, not entries (CSV has a header and may quote line breaks): close enough for a progress line.
  let lines = 0;
  res.on('data', (chunk: Buffer) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    progress?.update({ count: Math.min(lines, total), planned: total });
  });
  await pipeline(res, out, { end: false });
  const trailer = res.trailers['x-replay-end'];
  if (!trailer) throw new ReplayFailure(`${server} ended the response without its x-replay-end trailer: the replay is incomplete`);
  return JSON.parse(trailer) as ReplayEnd;
}

function errorLine(body: string): string {
  try {
    const e = JSON.parse(body) as { code?: string; error?: string; details?: { reason?: string } };
    return `: ${e.code ?? ''} ${e.details?.reason ?? e.error ?? ''}`.trimEnd();
  } catch {
    return body ? `: ${body.slice(0, 200)}` : '';
  }
}

function summary(end: ReplayEnd): string {
  const served = end.count > 0 ? `seqs ${end.from_seq}..${end.to_seq}` : 'nothing';
  const missing = end.missing.map((m) => `${m.from_seq}..${m.to_seq ?? ''} ${m.reason}`).join(', ');
  return `replayed ${end.count} entries of ${end.topic} (${served}, epoch ${end.epoch ?? 'none'})${missing ? `; not in the answer: ${missing}` : ''}`;
}

interface Progress {
  update: (progress: ReplayProgress) => void;
  done: () => void;
}

/** Entries, rate and ETA on stderr: rewritten in place on a terminal, a line every second otherwise. */
function progressLine(): Progress {
  const started = Date.now();
  let last = 0;
  let shown = '';
  const tty = process.stderr.isTTY;
  return {
    update({ count, planned }) {
      const now = Date.now();
      if (now - last < (tty ? 200 : 1000)) return;
      last = now;
      const rate = count / Math.max(0.001, (now - started) / 1000);
      const eta = rate > 0 ? Math.max(0, (planned - count) / rate) : 0;
      shown = `${count.toLocaleString('en')}/${planned.toLocaleString('en')} entries, ${Math.round(rate).toLocaleString('en')}/s, ETA ${eta.toFixed(1)} s`;
      process.stderr.write(tty ? `\r${shown}\x1b[K` : `${shown}\n`);
    },
    done() {
      if (tty && shown) process.stderr.write('\n');
    },
  };
}
