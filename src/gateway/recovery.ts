import type { JsonObject } from '../domain/json.js';
import type { HistoryEntry, HistoryRead, Snapshot } from '../store/topic-store.js';

/**
 * The gap-free catch-up: what a subscriber is missing is sent directly (history, then the feed's ring
 * of recent entries), and the switch to live happens in the same synchronous step as the last direct
 * send, so the next entry the feed hands out reaches the subscriber through its room, never twice and
 * never not at all. When the history it needs is gone or belongs to another epoch, it is a fresh
 * snapshot instead, marked `resync`. Over a small read interface (a topic's feed implements it), so it
 * is tested without sockets (test/unit/recovery.test.ts).
 */

/** What catch-up reads: the gateway's live view of one topic, and the store behind it. */
export interface RecoverySource {
  readonly topic: string;
  /** The epoch the feed serves. */
  readonly epoch: string;
  /** Highest seq the feed has handed out. */
  readonly head: number;
  /** Entries with seq in (afterSeq, head] if the ring still holds all of them, else null. */
  recentAfter(afterSeq: number): HistoryEntry[] | null;
  historyAfter(afterSeq: number, limit: number): Promise<HistoryRead>;
  snapshot(): Promise<Snapshot | null>;
  /** Resolves true once the feed has handed out `seq`, false after `timeoutMs`. */
  waitFor(seq: number, timeoutMs: number): Promise<boolean>;
}

/** Where catch-up delivers; every call but `current` happens only while `current()` is true. */
export interface RecoverySink {
  /** False once the subscription was unsubscribed or replaced: catch-up stops and reports `superseded`. */
  current(): boolean;
  snapshot(snapshot: Snapshot, marks: JsonObject): void;
  entries(entries: HistoryEntry[]): void;
  /** Join live delivery now: called synchronously after the last `entries`. */
  live(): void;
}

export interface RecoveryRequest {
  /** The last seq the client holds (resume); absent: start from a snapshot. */
  resumeFrom?: number;
  /** The epoch `resumeFrom` belongs to; a different one forces a re-sync. */
  epoch?: string;
  /** Re-sync from a snapshot whatever the request says (the topic's history was reset). */
  resync?: boolean;
  /** Delivery was paused after this seq: a snapshot marked `conflated` replaces the skipped range. */
  conflatedAfter?: number;
}

/** What the subscribe ack reports (`payload`), beside the action and topic. */
export type RecoveryResult = { resumed_from: number; resync: false; epoch: string } | { snapshot_seq: number; resync: boolean; epoch: string };

/** History entries read per round trip. */
export const CATCH_UP_PAGE = 2000;
/** Snapshot attempts (and the pause between them) before catch-up gives up. */
const SNAPSHOT_ATTEMPTS = 50;
const SNAPSHOT_RETRY_MS = 10;
/** How long a resume waits for this gateway's feed to reach a seq the client already saw elsewhere. */
export const FEED_WAIT_MS = 2000;

export async function recover(source: RecoverySource, request: RecoveryRequest, sink: RecoverySink): Promise<RecoveryResult | 'superseded'> {
  const { resumeFrom } = request;
  const resuming = resumeFrom !== undefined && request.conflatedAfter === undefined && request.resync !== true;
  if (resuming) {
    const resumed = await resume(source, resumeFrom, request.epoch, sink);
    if (resumed !== 'resync') return resumed;
  }
  // A resume that could not continue is a re-sync as much as a forced one.
  return fromSnapshot(source, request.resync === true || resuming, request.conflatedAfter, sink);
}

/** Sends (resumeFrom, head] from history and ring, then goes live; `resync` when that is impossible. */
async function resume(source: RecoverySource, resumeFrom: number, epoch: string | undefined, sink: RecoverySink): Promise<RecoveryResult | 'superseded' | 'resync'> {
  // An empty epoch comes from a snapshot taken before the topic's first entry: nothing to compare.
  if (epoch && epoch !== source.epoch) return 'resync';
  if (resumeFrom > source.head && !(await source.waitFor(resumeFrom, FEED_WAIT_MS))) return 'resync';
  // Every read must come from the epoch the resume started in: the feed can move to another while we
  // read (a reset it noticed), and the seqs of another epoch are other entries.
  const served = source.epoch;
  let cursor = resumeFrom;
  for (;;) {
    if (!sink.current()) return 'superseded';
    if (source.epoch !== served) return 'resync';
    const recent = source.recentAfter(cursor);
    if (recent) {
      sink.entries(recent);
      sink.live();
      return { resumed_from: resumeFrom, resync: false, epoch: source.epoch };
    }
    const read = await source.historyAfter(cursor, CATCH_UP_PAGE);
    if (!sink.current()) return 'superseded';
    const first = read.entries[0];
    // Another epoch, or history trimmed past the cursor: what the client holds can not be continued.
    if (read.epoch !== served || source.epoch !== served || (first !== undefined && first.seq !== cursor + 1) || (first === undefined && read.headSeq > cursor)) return 'resync';
    // Only what the feed has already handed out: later entries will come live.
    const handedOut = read.entries.filter((e) => e.seq <= source.head);
    const last = handedOut[handedOut.length - 1];
    if (last === undefined) return 'resync';
    sink.entries(handedOut);
    cursor = last.seq;
  }
}

/**
 * A snapshot the feed lines up with, the ring after it, then live. Retries are for a store and feed
 * caught between two moments (a reset the feed has not seen yet, a snapshot newer than the ring): they
 * settle fast.
 */
async function fromSnapshot(source: RecoverySource, resync: boolean, conflatedAfter: number | undefined, sink: RecoverySink): Promise<RecoveryResult | 'superseded'> {
  for (let attempt = 0; ; attempt++) {
    if (attempt >= SNAPSHOT_ATTEMPTS) throw new Error(`${source.topic}: snapshot and live feed did not line up after ${attempt} attempts`);
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, SNAPSHOT_RETRY_MS));
    const snapshot = (await source.snapshot()) ?? emptySnapshot(source.topic, source.epoch);
    if (!sink.current()) return 'superseded';
    if (snapshot.epoch !== source.epoch && snapshot.seq > 0) continue;
    if (snapshot.seq > source.head && !(await source.waitFor(snapshot.seq, FEED_WAIT_MS))) continue;
    if (!sink.current()) return 'superseded';
    const recent = source.recentAfter(snapshot.seq);
    if (!recent) continue; // the feed moved past its ring while we read: take a newer snapshot
    const conflated = conflatedAfter !== undefined && snapshot.seq > conflatedAfter ? { from: conflatedAfter + 1, to: snapshot.seq } : undefined;
    // A conflation that skipped nothing needs no snapshot: the client is already current.
    if (conflatedAfter === undefined || conflated) sink.snapshot({ ...snapshot, epoch: source.epoch }, { ...(resync ? { resync: true } : {}), ...(conflated ? { conflated } : {}) });
    sink.entries(recent);
    sink.live();
    return { snapshot_seq: snapshot.seq, resync, epoch: source.epoch };
  }
}

function emptySnapshot(topic: string, epoch: string): Snapshot {
  return { topic, epoch, seq: 0, ts: new Date().toISOString(), state: {} };
}
