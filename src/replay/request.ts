import { parseTopic } from '../domain/topics.js';
import { ClientError } from '../protocol/errors.js';

/**
 * What an auditor asks for: a topic's entries by seq (`from_seq`..`to_seq`, both inclusive) or by commit
 * time (`since` inclusive .. `until` exclusive), in seq order, as NDJSON or CSV. One parser for every way
 * in (HTTP query, CLI options), so both accept and refuse exactly the same requests.
 */

export const REPLAY_FORMATS = ['ndjson', 'csv'] as const;
export type ReplayFormat = (typeof REPLAY_FORMATS)[number];

/**
 * Where the entries come from: `redis` what the store holds; `kafka` every entry rebuilt from the topic's
 * Kafka partition; `auto` (default) Redis for what it holds and Kafka for the older rest.
 */
export const REPLAY_SOURCES = ['auto', 'redis', 'kafka'] as const;
export type ReplaySource = (typeof REPLAY_SOURCES)[number];

export type ReplayRange =
  /** `toSeq` absent: up to the head when the replay starts. */
  | { by: 'seq'; fromSeq: number; toSeq?: number }
  /** Canonical ISO-8601 (`toISOString`), comparable as text with entries' ts. Absent: unbounded on that side. */
  | { by: 'time'; since?: string; until?: string };

export interface ReplayRequest {
  topic: string;
  range: ReplayRange;
  format: ReplayFormat;
  source: ReplaySource;
  /** An earlier epoch of the topic (one a reset left behind) instead of its current one. */
  epoch?: string;
}

/** The request's parameters as given (HTTP query names); absent ones undefined. */
export interface ReplayParams {
  topic?: string | undefined;
  from_seq?: string | undefined;
  to_seq?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  format?: string | undefined;
  source?: string | undefined;
  epoch?: string | undefined;
}

/** Parameter names, as the HTTP route reads them. */
export const REPLAY_PARAMS = ['topic', 'from_seq', 'to_seq', 'since', 'until', 'format', 'source', 'epoch'] as const satisfies readonly (keyof ReplayParams)[];

const MAX_SEQ = Number.MAX_SAFE_INTEGER;
/** A date (UTC midnight), or a date and time with its zone: a time without one would be the server's local time. */
/** An epoch id as the stores make them (hex), with room for other lengths. */
const EPOCH = /^[0-9a-z]{1,64}$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/;

function invalid(reason: string): ClientError {
  return new ClientError('INVALID_MESSAGE', { reason });
}

/** Validates and normalises a replay request; a bad one is an INVALID_MESSAGE with the reason. */
export function parseReplayRequest(params: ReplayParams): ReplayRequest {
  const topic = validTopic(params.topic);
  const format = params.format ?? 'ndjson';
  if (!(REPLAY_FORMATS as readonly string[]).includes(format)) throw invalid(`format must be one of ${REPLAY_FORMATS.join(', ')}`);
  const source = params.source ?? 'auto';
  if (!(REPLAY_SOURCES as readonly string[]).includes(source)) throw invalid(`source must be one of ${REPLAY_SOURCES.join(', ')}`);
  const bySeq = params.from_seq !== undefined || params.to_seq !== undefined;
  const byTime = params.since !== undefined || params.until !== undefined;
  if (bySeq && byTime) throw invalid('give a range by seq (from_seq, to_seq) or by time (since, until), not both');
  const request: ReplayRequest = { topic, format: format as ReplayFormat, source: source as ReplaySource, range: byTime ? timeRange(params.since, params.until) : seqRange(params.from_seq, params.to_seq) };
  if (params.epoch !== undefined) {
    if (!EPOCH.test(params.epoch)) throw invalid('epoch must be an epoch id (1 to 64 lowercase letters and digits)');
    if (source === 'redis') throw invalid('an earlier epoch is rebuilt from Kafka: source redis has none');
    request.epoch = params.epoch;
  }
  return request;
}

/** `GET /api/v1/replay/state`: a topic and an instant. */
export const STATE_PARAMS = ['topic', 'at'] as const;

export function parseStateRequest(params: { topic?: string | undefined; at?: string | undefined }): { topic: string; at: string } {
  const topic = validTopic(params.topic);
  if (params.at === undefined) throw invalid('at is required (an ISO-8601 time)');
  const at = timeParam('at', params.at);
  // An instant past the clock has no known state yet (entries may still be committed before it).
  if (at > new Date().toISOString()) throw invalid(`at (${at}) is in the future`);
  return { topic, at };
}

function validTopic(topic: string | undefined): string {
  if (topic === undefined || topic === '') throw invalid('topic is required');
  if (!parseTopic(topic)) throw invalid(`topic '${topic}' is not a topic that can exist`);
  return topic;
}

function seqRange(from: string | undefined, to: string | undefined): ReplayRange {
  const fromSeq = from === undefined ? 1 : seqParam('from_seq', from);
  if (to === undefined) return { by: 'seq', fromSeq };
  const toSeq = seqParam('to_seq', to);
  if (toSeq < fromSeq) throw invalid(`to_seq (${toSeq}) is before from_seq (${fromSeq})`);
  return { by: 'seq', fromSeq, toSeq };
}

function seqParam(name: string, raw: string): number {
  const value = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= 1 && value <= MAX_SEQ)) throw invalid(`${name} must be an integer 1..${MAX_SEQ}`);
  return value;
}

function timeRange(since: string | undefined, until: string | undefined): ReplayRange {
  const range: ReplayRange = { by: 'time' };
  if (since !== undefined) range.since = timeParam('since', since);
  if (until !== undefined) range.until = timeParam('until', until);
  if (range.since !== undefined && range.until !== undefined && range.until <= range.since) throw invalid(`until (${range.until}) must be after since (${range.since})`);
  return range;
}

/** Any ISO-8601 instant, as its canonical form; a date alone is its UTC midnight. */
export function timeParam(name: string, raw: string): string {
  const ms = ISO_8601.test(raw) ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) throw invalid(`${name} must be an ISO-8601 date, or time with a zone, e.g. 2026-11-26T10:00:00Z (got '${raw}')`);
  return new Date(ms).toISOString();
}
