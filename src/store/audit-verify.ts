import type { KeyObject } from 'node:crypto';
import { ChainVerifier, type ChainBreak } from './chain.js';
import { signatureValid } from './checkpoint.js';
import type { HistoryEntry, SignedCheckpoint, TopicStore } from './topic-store.js';

/**
 * `bondx audit verify` over any history source (Redis, or a gateway's replay API): recomputes a topic's
 * hash chain over the history held, and checks the signed checkpoints against it. A history rewritten
 * without recomputing the hashes breaks the chain at the rewritten seq; one rewritten with recomputed
 * hashes no longer meets the signed checkpoints after it.
 */

export type HistorySource = Pick<TopicStore, 'readAfter'>;

/** A checkpoint that does not hold. */
export interface CheckpointFailure {
  checkpoint: SignedCheckpoint;
  reason: 'signature' | 'hash' | 'epoch' | 'missing';
  detail: string;
}

export interface TopicVerdict {
  topic: string;
  /** Held history when the check started. */
  firstSeq: number;
  headSeq: number;
  /** Entries whose link was recomputed. */
  checked: number;
  /** The entry taken on trust as the start of the walk (its predecessor is not held or not asked for); null: the walk starts at seq 1. */
  anchor: number | null;
  /** The first break of the chain, if any. */
  break: ChainBreak | null;
  breaks: number;
  checkpoints: { confirmed: number; unchecked: number; failures: CheckpointFailure[] };
}

export interface VerifyOptions {
  /** First seq to recompute (default 1). */
  fromSeq?: number;
  pageSize?: number;
  onProgress?: (topic: string, seq: number, headSeq: number) => void;
}

export function verdictOk(verdict: TopicVerdict): boolean {
  return verdict.break === null && verdict.checkpoints.failures.length === 0;
}

/**
 * Verifies one topic. The checkpoints are read before the history, so each names a seq the history held
 * by then: one beyond the head, or under another epoch, is signed history that is gone.
 */
export async function verifyTopic(source: HistorySource, topic: string, checkpoints: readonly SignedCheckpoint[], publicKey: KeyObject, options: VerifyOptions = {}): Promise<TopicVerdict> {
  const pageSize = options.pageSize ?? 1000;
  const { headSeq, firstSeq } = await source.readAfter(topic, 0, 0);
  const fromSeq = Math.max(1, options.fromSeq ?? 1);
  const failures: CheckpointFailure[] = [];
  const bySeq = new Map<number, SignedCheckpoint[]>();
  let unchecked = 0;
  for (const checkpoint of checkpoints) {
    if (!signatureValid(checkpoint, publicKey)) failures.push({ checkpoint, reason: 'signature', detail: `signature does not verify with the public key (signed by key ${checkpoint.key_id})` });
    else if (checkpoint.seq > headSeq) failures.push({ checkpoint, reason: 'missing', detail: `signed seq ${checkpoint.seq}, but the history ends at ${headSeq}` });
    else if (checkpoint.seq < Math.max(fromSeq, firstSeq)) unchecked++;
    else bySeq.set(checkpoint.seq, [...(bySeq.get(checkpoint.seq) ?? []), checkpoint]);
  }
  // The entry before fromSeq anchors the walk (its own link is not recomputed); at seq 1 the epoch's hash(0) does.
  const startAfter = Math.max(fromSeq, firstSeq) - 2;
  const verifier = new ChainVerifier(topic);
  let anchor: number | null = null;
  let first: ChainBreak | null = null;
  let breaks = 0;
  let checked = 0;
  let after = Math.max(0, startAfter);
  const onEntry = (entry: HistoryEntry) => {
    if (anchor === null && checked === 0 && entry.seq > 1) anchor = entry.seq;
    const broken = verifier.check(entry);
    if (entry.seq !== anchor) checked++;
    if (broken) {
      breaks++;
      first ??= broken;
    }
    for (const checkpoint of bySeq.get(entry.seq) ?? []) {
      bySeq.delete(entry.seq);
      if (checkpoint.epoch !== entry.epoch) failures.push({ checkpoint, reason: 'epoch', detail: `signed epoch ${checkpoint.epoch} at seq ${entry.seq}, the history holds epoch ${entry.epoch} there (renumbered after a loss?)` });
      else if (checkpoint.hash !== entry.hash) failures.push({ checkpoint, reason: 'hash', detail: `signed hash ${checkpoint.hash} at seq ${entry.seq}, the history holds ${entry.hash}` });
    }
  };
  while (after < headSeq) {
    const read = await source.readAfter(topic, after, Math.min(pageSize, headSeq - after));
    const entries = read.entries.filter((e) => e.seq <= headSeq);
    if (entries.length === 0) break;
    for (const entry of entries) onEntry(entry);
    after = (entries.at(-1) as HistoryEntry).seq;
    options.onProgress?.(topic, after, headSeq);
  }
  // Checkpoints whose seq the walk did not meet were trimmed meanwhile.
  for (const left of bySeq.values()) unchecked += left.length;
  const confirmed = checkpoints.length - unchecked - failures.length;
  return { topic, firstSeq, headSeq, checked, anchor, break: first, breaks, checkpoints: { confirmed, unchecked, failures } };
}
