import type { MissingPart } from '../protocol/messages.js';

/**
 * Pure range logic of a replay: which part of an asked range a topic's held history has, and what part
 * does not exist there. No I/O: history is seen through its bounds and, for times, a probe `tsAt(seq)`.
 */

/** The wire shapes (an HTTP trailer's, a replay ack's) live with the protocol. */
export type { MissingPart, MissingReason } from '../protocol/messages.js';

/** A topic's history as the store holds it: seqs firstSeq..headSeq (none when firstSeq > headSeq). */
export interface HistoryBounds {
  firstSeq: number;
  headSeq: number;
}

/** The seqs of an asked range that are held (`fromSeq > toSeq`: none), and the asked seqs that are not. */
export interface SeqSpan {
  fromSeq: number;
  toSeq: number;
  missing: MissingPart[];
}

/** Adds a missing part, merged into the previous one when they touch and share a reason. */
export function addMissing(missing: MissingPart[], part: MissingPart): void {
  const last = missing.at(-1);
  if (last && last.reason === part.reason && last.to_seq !== null && last.to_seq + 1 === part.from_seq) last.to_seq = part.to_seq;
  else missing.push({ ...part });
}

/** Seqs `from`..`to` (inclusive; `to` absent: up to the head). */
export function resolveSeqRange(from: number, to: number | undefined, bounds: HistoryBounds): SeqSpan {
  const { firstSeq, headSeq } = bounds;
  const last = to ?? headSeq;
  const missing: MissingPart[] = [];
  if (from < firstSeq) addMissing(missing, { from_seq: from, to_seq: Math.min(last, firstSeq - 1, headSeq), reason: 'trimmed' });
  if (to === undefined && from > headSeq) addMissing(missing, { from_seq: from, to_seq: null, reason: 'beyond_head' });
  if (to !== undefined && to > headSeq) addMissing(missing, { from_seq: Math.max(from, headSeq + 1), to_seq: to, reason: 'beyond_head' });
  return { fromSeq: Math.max(from, firstSeq), toSeq: Math.min(last, headSeq), missing };
}

/**
 * Commit times `since` (inclusive) .. `until` (exclusive), canonical ISO-8601; either may be absent.
 * History is ordered by ts as well as seq (the store never commits an entry before its predecessor), so
 * each edge is a binary search over the held seqs: about log2(HISTORY_MAX_LEN) probes, never a scan.
 * Trimmed entries are older than the first held one: when that one is at or after `since`, some of
 * them may be in the range too, which is reported rather than guessed.
 */
export async function resolveTimeRange(since: string | undefined, until: string | undefined, bounds: HistoryBounds, tsAt: (seq: number) => Promise<string | undefined>): Promise<SeqSpan> {
  const { firstSeq, headSeq } = bounds;
  const fromSeq = since === undefined ? firstSeq : await firstAtOrAfter(since, firstSeq, headSeq, tsAt);
  const end = until === undefined ? headSeq + 1 : await firstAtOrAfter(until, fromSeq, headSeq, tsAt);
  const missing: MissingPart[] = [];
  if (firstSeq > 1 && fromSeq === firstSeq) addMissing(missing, { from_seq: 1, to_seq: firstSeq - 1, reason: 'trimmed' });
  return { fromSeq, toSeq: end - 1, missing };
}

/**
 * The smallest seq in lo..hi whose entry's ts is at or after `ts`, hi + 1 if none. A probe that finds its
 * seq no longer held (trimmed meanwhile) counts it as older: trimmed entries precede every held one.
 */
export async function firstAtOrAfter(ts: string, lo: number, hi: number, tsAt: (seq: number) => Promise<string | undefined>): Promise<number> {
  let low = lo;
  let high = hi + 1;
  while (low < high) {
    const mid = low + Math.floor((high - low) / 2);
    const at = await tsAt(mid);
    if (at !== undefined && at >= ts) high = mid;
    else low = mid + 1;
  }
  return low;
}
