import { initialState } from '../domain/deltas/index.js';
import type { JsonObject } from '../domain/json.js';
import { parseTopic } from '../domain/topics.js';
import { ClientError } from '../protocol/errors.js';
import { firstAtOrAfter } from '../replay/range.js';
import type { HistoryReader } from '../replay/replay.js';
import { fold } from '../replay/state.js';
import { timeParam } from '../replay/request.js';
import { latestRanges, type DeliveryLog, type DeliveryQuery, type DeliveryRecord } from '../store/deliveries.js';
import type { TopicStore } from '../store/topic-store.js';

/**
 * The two questions an auditor asks of the delivery record (README "Audit: delivery record"): which
 * ranges a user was sent (`GET /api/v1/audit/deliveries`, `bondx audit deliveries`), and what that user
 * had of a topic at an instant (`GET /api/v1/audit/shown`, `bondx audit shown`): the last seq delivered
 * by then, from the ranges, and the topic's state at that seq, from the replay of its history. One
 * parser per question for every way in, so HTTP and the CLI accept and refuse the same requests.
 */

export const DELIVERIES_PARAMS = ['user', 'topic', 'since', 'until'] as const;
export const SHOWN_PARAMS = ['user', 'topic', 'at'] as const;
/** The longest user id the audit and admin routes take. */
export const MAX_USER_ID_LENGTH = 128;

type Params<N extends string> = Partial<Record<N, string | undefined>>;

function invalid(reason: string): ClientError {
  return new ClientError('INVALID_MESSAGE', { reason });
}

function validUser(user: string | undefined): string {
  if (user === undefined || user === '' || user.length > MAX_USER_ID_LENGTH) throw invalid(`user is required: a user id of 1..${MAX_USER_ID_LENGTH} characters`);
  return user;
}

function validTopic(topic: string | undefined): string {
  if (topic === undefined || topic === '') throw invalid('topic is required');
  if (!parseTopic(topic)) throw invalid(`topic '${topic}' is not a topic that can exist`);
  return topic;
}

export function parseDeliveriesRequest(params: Params<(typeof DELIVERIES_PARAMS)[number]>): DeliveryQuery {
  const query: DeliveryQuery = { user: validUser(params.user) };
  if (params.topic !== undefined) query.topic = validTopic(params.topic);
  if (params.since !== undefined) query.since = timeParam('since', params.since);
  if (params.until !== undefined) query.until = timeParam('until', params.until);
  if (query.since !== undefined && query.until !== undefined && query.until <= query.since) throw invalid(`until (${query.until}) must be after since (${query.since})`);
  return query;
}

export interface ShownRequest {
  user: string;
  topic: string;
  at: string;
}

export function parseShownRequest(params: Params<(typeof SHOWN_PARAMS)[number]>): ShownRequest {
  const user = validUser(params.user);
  const topic = validTopic(params.topic);
  if (params.at === undefined) throw invalid('at is required (an ISO-8601 time)');
  const at = timeParam('at', params.at);
  if (at > new Date().toISOString()) throw invalid(`at (${at}) is in the future`);
  return { user, topic, at };
}

/** The answer of `audit shown` (schemas/server/audit-shown.json). */
export interface ShownAnswer extends ShownRequest {
  /** false: the user had been sent nothing of the topic by `at` (every other field but `ranges` is null). */
  delivered: boolean;
  epoch: string | null;
  seq: number | null;
  /** When that seq reached them: a live entry's commit time (sent within milliseconds), else the range's send. */
  delivered_at: string | null;
  /** The topic's state at `seq` (the snapshot a subscriber then got), the client's view unfiltered. */
  state: JsonObject | null;
  /** The range that delivered it. */
  range: DeliveryRecord | null;
  /** Every range of the topic opened by `at`, the user's connections all together, ordered by opening. */
  ranges: DeliveryRecord[];
}

/** How the answer reads history: entries by seq (store, or stitched with Kafka) and the current snapshot. */
export interface ShownHistory {
  reader: HistoryReader;
  store: Pick<TopicStore, 'snapshot'>;
}

/** What `user` had of `topic` at `at`. */
export async function shownAt(log: Pick<DeliveryLog, 'read'>, history: ShownHistory, request: ShownRequest): Promise<ShownAnswer> {
  const { user, topic, at } = request;
  const ranges = latestRanges(await log.read(user)).filter((r) => r.topic === topic && r.ts <= at);
  let best: { range: DeliveryRecord; seq: number; deliveredAt: string } | undefined;
  for (const range of ranges) {
    // A replay plays history back beside the live state: not what the screen held.
    if (range.kind === 'replay') continue;
    const seq = range.kind === 'live' ? Math.min(range.to_seq, await committedBy(history.reader, range, at)) : range.to_seq;
    if (seq < range.from_seq) continue;
    // The latest range to have delivered anything by then holds the state; within one opening, the furthest.
    if (!best || range.ts > best.range.ts || (range.ts === best.range.ts && seq > best.seq)) {
      best = { range, seq, deliveredAt: range.kind === 'live' ? maxTs(range.ts, await tsOf(history.reader, topic, range.epoch, seq)) : range.ts };
    }
  }
  if (!best) return { user, topic, at, delivered: false, epoch: null, seq: null, delivered_at: null, state: null, range: null, ranges };
  const { range, seq, deliveredAt } = best;
  return { user, topic, at, delivered: true, epoch: range.epoch, seq, delivered_at: deliveredAt, state: await stateAtSeq(history, topic, range.epoch, seq), range, ranges };
}

const maxTs = (a: string, b: string | undefined): string => (b !== undefined && b > a ? b : a);

/** Commit time of `seq` in `epoch`; undefined when the history does not hold it. */
async function tsOf(reader: HistoryReader, topic: string, epoch: string, seq: number): Promise<string | undefined> {
  const read = await reader.readAfter(topic, seq - 1, 1);
  const [entry] = read.entries;
  return entry?.seq === seq && read.epoch === epoch ? entry.ts : undefined;
}

/** The last seq of a live range committed at or before `at` (from_seq - 1: none); a binary search by commit time. */
async function committedBy(reader: HistoryReader, range: DeliveryRecord, at: string): Promise<number> {
  // Commit times have millisecond precision: "after at" is "at or after at + 1 ms".
  const after = new Date(Date.parse(at) + 1).toISOString();
  return (await firstAtOrAfter(after, range.from_seq, range.to_seq, (seq) => tsOf(reader, range.topic, range.epoch, seq))) - 1;
}

/**
 * The topic's state after entry `seq` of `epoch`: the store's snapshot when it is that one, else its
 * history from seq 1 (the reader stitches in what Kafka rebuilds) folded as the reducers built it.
 * Without the entries from seq 1 (trimmed, and no Kafka to rebuild them) it can not be known.
 */
export async function stateAtSeq(history: ShownHistory, topic: string, epoch: string, seq: number): Promise<JsonObject> {
  const snapshot = await history.store.snapshot(topic);
  if (snapshot && snapshot.epoch === epoch && snapshot.seq === seq) return snapshot.state;
  // Seq 0: a snapshot before the topic's first entry, `{}` as a subscribe sends it.
  if (seq === 0) return {};
  const initial = initialState(topic);
  const state = initial && (await fold(history.reader, topic, epoch, 0, initial, seq));
  if (!state) throw new ClientError('NOT_IMPLEMENTED', { reason: `the state at seq ${seq} is rebuilt from the topic's history from seq 1 in its epoch, which this server does not hold (trimmed, another epoch, and no Kafka to rebuild it)`, topic, epoch, seq });
  return state;
}
