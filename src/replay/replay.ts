import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { parseTopic } from '../domain/topics.js';
import type { ReplayEnd } from '../protocol/messages.js';
import { entryOfStored, storedEntryOf, type StoredEntry, type StoredHistory } from '../store/stored-entry.js';
import type { HistoryEntry, HistoryRead, TopicStore } from '../store/topic-store.js';
import { csvLayout } from './csv.js';
import { addMissing, resolveSeqRange, resolveTimeRange, type MissingPart, type SeqSpan } from './range.js';
import type { ReplayFormat, ReplayRange, ReplayRequest } from './request.js';

/**
 * A replay reads a topic's held history page by page (never the whole range at once) and writes it
 * through an encoder to a sink that waits for the reader to keep up. Phase 1 reads what the store still
 * holds; the trailer says which asked seqs are not in the answer and why.
 */

/** What a replay plans with: the store's paged history read (a small interface, so any history source fits). */
export type HistoryReader = Pick<TopicStore, 'readAfter'>;

/** What a replay streams from: the same history, payloads as stored, so a line splices them in. */
export type ReplayHistory = HistoryReader & StoredHistory;

/** A store a replay reads: any history reader, with its stored read if it has one (Redis). */
export type HistoryStore = HistoryReader & Partial<StoredHistory>;

/**
 * The store as a ReplayHistory: its own stored read where it has one, else its entries with their
 * payloads serialised as the commit serialised them.
 */
export function replayHistory(store: HistoryStore): ReplayHistory {
  const stored = store.readStoredAfter?.bind(store);
  return {
    readAfter: (topic, afterSeq, limit) => store.readAfter(topic, afterSeq, limit),
    readStoredAfter: stored ?? (async (topic, afterSeq, limit) => storedReadOf(await store.readAfter(topic, afterSeq, limit))),
  };
}

export function storedReadOf(read: HistoryRead): Omit<HistoryRead, 'entries'> & { entries: StoredEntry[] } {
  return { ...read, entries: read.entries.map(storedEntryOf) };
}

/** How an entry reaches a live client, as one line (the gateway's replayLine): a replayed line is exactly that. */
export type ToLine = (entry: StoredEntry) => string;

/** Entries per history read (and per write). */
export const REPLAY_PAGE_SIZE = 1000;

/** The resolved request: held seqs fromSeq..toSeq of one epoch, and what of the asked range is not held. */
export interface ReplayPlan extends SeqSpan {
  topic: string;
  /** '' for a topic the store does not have. */
  epoch: string;
  firstSeq: number;
  headSeq: number;
  asked: ReplayRange;
}

/** The last line of an NDJSON replay: a wire shape, with the protocol. */
export type { ReplayEnd } from '../protocol/messages.js';

/** Resolves a request against the history the store holds now: bounds from one read, times by binary search. */
export async function planReplay(reader: HistoryReader, request: ReplayRequest): Promise<ReplayPlan> {
  const { topic, range } = request;
  // limit 0: epoch, head and first held seq only.
  const { epoch, headSeq, firstSeq } = await reader.readAfter(topic, 0, 0);
  const bounds = { firstSeq, headSeq };
  const span =
    range.by === 'seq'
      ? resolveSeqRange(range.fromSeq, range.toSeq, bounds)
      : await resolveTimeRange(range.since, range.until, bounds, async (seq) => {
          const [entry] = (await reader.readAfter(topic, seq - 1, 1)).entries;
          return entry?.seq === seq && entry.epoch === epoch ? entry.ts : undefined;
        });
  return { topic, epoch, firstSeq, headSeq, asked: range, ...span };
}

/** The entries of a plan, one page at a time; what turns out to be gone meanwhile is added to `missing`. */
export function replayPages(reader: HistoryReader, plan: ReplayPlan, missing: MissingPart[], pageSize = REPLAY_PAGE_SIZE): AsyncGenerator<HistoryEntry[]> {
  return pagesOf((topic, afterSeq, limit) => reader.readAfter(topic, afterSeq, limit), plan, missing, pageSize);
}

/** replayPages with the payloads as stored: what runReplay writes. */
export function storedPages(reader: StoredHistory, plan: ReplayPlan, missing: MissingPart[], pageSize = REPLAY_PAGE_SIZE): AsyncGenerator<StoredEntry[]> {
  return pagesOf((topic, afterSeq, limit) => reader.readStoredAfter(topic, afterSeq, limit), plan, missing, pageSize);
}

type PageRead<E> = (topic: string, afterSeq: number, limit: number) => Promise<Omit<HistoryRead, 'entries'> & { entries: E[] }>;

/**
 * The paging of both: each page's read is sent as soon as the previous page's last seq is known, so the
 * store reads the next page while the caller encodes and writes this one (one read ahead, no more).
 */
async function* pagesOf<E extends { seq: number }>(read: PageRead<E>, plan: ReplayPlan, missing: MissingPart[], pageSize: number): AsyncGenerator<E[]> {
  const ask = (from: number) => {
    const page = read(plan.topic, from - 1, Math.min(pageSize, plan.toSeq - from + 1));
    // Awaited below; if the caller stops first, its failure is nobody's to report.
    page.catch(() => undefined);
    return page;
  };
  let next = plan.fromSeq;
  let pending = next <= plan.toSeq ? ask(next) : undefined;
  while (pending !== undefined) {
    const page = await pending;
    pending = undefined;
    if (page.epoch !== plan.epoch) return addMissing(missing, { from_seq: next, to_seq: plan.toSeq, reason: 'epoch_changed' });
    const first = page.entries[0];
    // Nothing at or after `next`: the head went back (a store restored from an older copy).
    if (!first) return addMissing(missing, { from_seq: next, to_seq: plan.toSeq, reason: 'beyond_head' });
    // Trimmed while we read (the topic is being written faster than it is replayed).
    if (first.seq > next) addMissing(missing, { from_seq: next, to_seq: Math.min(first.seq - 1, plan.toSeq), reason: 'trimmed' });
    const entries = page.entries.filter((entry) => entry.seq <= plan.toSeq);
    if (entries.length === 0) return;
    next = (entries.at(-1) as E).seq + 1;
    if (next <= plan.toSeq) pending = ask(next);
    yield entries;
  }
}

/**
 * The NDJSON line before the first entry of another epoch than the entry before it (a topic whose history
 * was reset: README "History is never silently rewritten"): from `from_seq` on, seqs are `epoch`'s. CSV
 * rows show it in their `epoch` column.
 */
export interface ReplayEpochBoundary {
  type: 'replay_epoch';
  topic: string;
  epoch: string;
  previous_epoch: string;
  from_seq: number;
}

/** Turns pages into the bytes of one format. */
export interface ReplayEncoder {
  contentType: string;
  begin(): string;
  page(entries: StoredEntry[]): string;
  /** NDJSON ends with the trailer line; CSV, whose rows are all alike, has no place for one. */
  end(end: ReplayEnd): string;
}

export function replayEncoder(format: ReplayFormat, topic: string, toLine: ToLine): ReplayEncoder {
  if (format === 'ndjson') {
    let previous: string | undefined;
    const line = (entry: StoredEntry) => {
      const boundary: ReplayEpochBoundary | undefined = previous !== undefined && entry.epoch !== previous ? { type: 'replay_epoch', topic, epoch: entry.epoch, previous_epoch: previous, from_seq: entry.seq } : undefined;
      previous = entry.epoch;
      return `${boundary ? `${JSON.stringify(boundary)}\n` : ''}${toLine(entry)}\n`;
    };
    return {
      contentType: 'application/x-ndjson',
      begin: () => '',
      page: (entries) => entries.map(line).join(''),
      end: (end) => `${JSON.stringify(end)}\n`,
    };
  }
  // planReplay's request was parsed, so the topic is one that can exist.
  const layout = csvLayout(parseTopic(topic)?.kind ?? 'mobile');
  return {
    contentType: 'text/csv; charset=utf-8; header=present',
    begin: () => layout.header,
    page: (entries) => entries.map((entry) => layout.row(entryOfStored(entry))).join(''),
    end: () => '',
  };
}

/** Where a replay is written; `write` resolves when more may be written (backpressure). */
export interface ReplaySink {
  write(chunk: string): Promise<void>;
}

/** A sink over a Node stream: waits for 'drain' when the stream's buffer is full; fails if the stream closes first. */
export function writableSink(stream: Writable): ReplaySink {
  return {
    async write(chunk) {
      if (chunk === '') return;
      if (stream.destroyed || stream.writableEnded) throw new Error('replay output closed');
      if (stream.write(chunk)) return;
      const ac = new AbortController();
      try {
        await Promise.race([once(stream, 'drain', { signal: ac.signal }), once(stream, 'close', { signal: ac.signal }).then(() => Promise.reject(new Error('replay output closed')))]);
      } finally {
        ac.abort();
      }
    },
  };
}

export interface ReplayProgress {
  /** Entries written so far. */
  count: number;
  /** Entries the plan holds (the most this replay can write). */
  planned: number;
}

/** Writes a planned replay through `encoder` to `sink`, page by page; resolves with its trailer. */
export async function runReplay(reader: StoredHistory, plan: ReplayPlan, encoder: ReplayEncoder, sink: ReplaySink, onProgress?: (progress: ReplayProgress) => void): Promise<ReplayEnd> {
  const missing = plan.missing.map((m) => ({ ...m }));
  const planned = Math.max(0, plan.toSeq - plan.fromSeq + 1);
  let count = 0;
  let from: number | null = null;
  let to: number | null = null;
  await sink.write(encoder.begin());
  for await (const entries of storedPages(reader, plan, missing)) {
    from ??= (entries[0] as StoredEntry).seq;
    to = (entries.at(-1) as StoredEntry).seq;
    count += entries.length;
    await sink.write(encoder.page(entries));
    onProgress?.({ count, planned });
  }
  const end = replayEnd(plan, { from, to, count }, missing);
  await sink.write(encoder.end(end));
  return end;
}

/** The trailer of a replay of `plan` that served `served` (seqs first..last, how many), `missing` not held. */
export function replayEnd(plan: ReplayPlan, served: { from: number | null; to: number | null; count: number }, missing: MissingPart[]): ReplayEnd {
  return {
    type: 'replay_end',
    topic: plan.topic,
    epoch: plan.epoch === '' ? null : plan.epoch,
    from_seq: served.from,
    to_seq: served.to,
    count: served.count,
    first_seq: plan.firstSeq,
    head_seq: plan.headSeq,
    asked: plan.asked.by === 'seq' ? { from_seq: plan.asked.fromSeq, to_seq: plan.asked.toSeq ?? null } : { since: plan.asked.since ?? null, until: plan.asked.until ?? null },
    missing,
  };
}
