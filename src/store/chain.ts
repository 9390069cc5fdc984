import { hash } from 'node:crypto';
import { jsonString, type JsonValue } from '../domain/json.js';
import type { ChainHead, HistoryEntry, TopicChange } from './topic-store.js';

/**
 * The hash chain of a topic's history (README "Audit: hash chain"), the one home of how entries are
 * numbered, timed and linked: both stores commit what `chainEntries` returns, so they can not disagree.
 *
 *   hash(0) of an epoch = hex(SHA-256(topic + "\n" + epoch))
 *   hash(n)             = hex(SHA-256(hash(n-1) + "\n" + JCS({topic, epoch, seq, type, ts, event_ts, event_id, payload})))
 *
 * JCS is RFC 8785: `jcs` below, which gives the bytes of the RFC's reference implementation (the
 * `canonicalize` package) for every JSON value, tested against it. A renewed epoch
 * (TopicStore.renewEpoch, after a loss) starts a new chain at the head's seq: its first entry links to
 * the new epoch's hash(0), and the entries kept from before stay verifiable under their own epoch.
 */

function sha256Hex(text: string): string {
  // One-shot (strings are hashed as UTF-8): no Hash object per entry.
  return hash('sha256', text, 'hex');
}

/** hash(0) of a topic's epoch: what its first entry links to. */
export function genesisHash(topic: string, epoch: string): string {
  return sha256Hex(`${topic}\n${epoch}`);
}

/** The head of an epoch with no entry yet, at seq `seq` (0 for a new topic) and ts `ts`. */
export function genesisHead(topic: string, epoch: string, seq = 0, ts = ''): ChainHead {
  return { epoch, seq, ts, hash: genesisHash(topic, epoch) };
}

/** The fields an entry's hash covers: all but the hash. */
export type ChainedFields = Omit<HistoryEntry, 'hash'>;

/** hash(n) from hash(n-1). Only the eight named fields count, whatever else the object carries. */
export function entryHash(previous: string, entry: ChainedFields): string {
  return sha256Hex(`${previous}\n${entryJcs(entry)}`);
}

/**
 * JCS of the eight hashed fields: `jcs({topic, epoch, seq, type, ts, event_ts, event_id, payload})` with
 * the members already in JCS order (epoch, event_id, event_ts, payload, seq, topic, ts, type), so no
 * key list is built and sorted per entry. Tested equal to canonicalize over arbitrary entries.
 */
export function entryJcs(entry: ChainedFields): string {
  const { topic, epoch, seq, type, ts, event_ts, event_id, payload } = entry;
  return `{"epoch":${jcsString(epoch)},"event_id":${jcsString(event_id)},"event_ts":${jcsString(event_ts)},"payload":${jcs(payload)},"seq":${jcs(seq)},"topic":${jcsString(topic)},"ts":${jcsString(ts)},"type":${jcsString(type)}}`;
}

/** A UTF-16 surrogate without its pair: JCS has no encoding for it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const SURROGATE = /[\ud800-\udfff]/;

function jcsString(text: string): string {
  if (SURROGATE.test(text) && LONE_SURROGATE.test(text)) throw new Error('Lone surrogate is not allowed');
  return jsonString(text);
}

/**
 * RFC 8785 JCS of a JSON value: what `canonicalize` returns (and throws) for it, byte for byte
 * (test/unit/hash-chain.test.ts compares them), built in one pass of string appends. canonicalize
 * allocates a Set, an array and a join per object and was a sixth of a Kafka rebuild's time.
 */
export function jcs(value: JsonValue): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return jcsString(value);
  if (typeof value === 'number') {
    if (Number.isNaN(value)) throw new Error('NaN is not allowed');
    if (!Number.isFinite(value)) throw new Error('Infinity is not allowed');
    // ECMAScript's number serialisation (String(), what JSON.stringify uses), which JCS adopts (-0 is 0).
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i === 0 ? '' : ','}${jcs(value[i] ?? null)}`;
    return `${out}]`;
  }
  let out = '{';
  // Keys in UTF-16 code unit order (Array.prototype.sort's default), members without a value left out.
  for (const key of Object.keys(value).sort()) {
    const member = value[key];
    if (member === undefined) continue;
    out += `${out === '{' ? '' : ','}${jcsString(key)}:${jcs(member)}`;
  }
  return `${out}}`;
}

export interface ChainInput {
  eventId: string;
  eventTs: string;
  /** The commit time (commitTime()): each entry's ts is this, raised to its topic's previous entry's ts. */
  committedAt: string;
  changes: readonly TopicChange[];
}

/**
 * The entries a commit appends: per change the next seq of its topic, the epoch of its head, the ts
 * (never before the head's: canonical ISO-8601 strings order as text, so history is ts-ordered) and the
 * hash linking it to the head. `heads` has every changed topic's head; a topic that is absent or null
 * does not exist yet and starts at `newEpoch()`. Several changes of one topic chain onto each other.
 */
export function chainEntries(input: ChainInput, heads: ReadonlyMap<string, ChainHead | null>, newEpoch: () => string): HistoryEntry[] {
  const running = new Map<string, ChainHead>();
  return input.changes.map((change) => {
    const head = running.get(change.topic) ?? heads.get(change.topic) ?? genesisHead(change.topic, newEpoch());
    const fields: ChainedFields = {
      topic: change.topic,
      epoch: head.epoch,
      seq: head.seq + 1,
      type: change.type,
      // biome-ignore lint/complexity/useMathMinMax: ISO-8601 strings, compared as text (Math.max would make them NaN)
      ts: head.ts > input.committedAt ? head.ts : input.committedAt,
      event_ts: input.eventTs,
      event_id: input.eventId,
      payload: change.payload,
    };
    const entry: HistoryEntry = { ...fields, hash: entryHash(head.hash, fields) };
    running.set(change.topic, entry);
    return entry;
  });
}

/** An entry whose stored hash is not the one its content and predecessor give, or a seq missing before it. */
export interface ChainBreak {
  topic: string;
  epoch: string;
  seq: number;
  reason: 'hash' | 'gap';
  /** `hash`: recomputed from the entry and the hash before it; `gap`: the seq that should have come. */
  expected: string;
  /** `hash`: what the history holds; `gap`: the seq that came. */
  found: string;
}

/**
 * Recomputes a topic's chain over its entries in seq order. The first entry given is taken on trust
 * (its stored hash anchors the rest) unless `previous` is known (the hash before it) or it is seq 1; an
 * entry of another epoch than the one before it opens that epoch's chain at its hash(0).
 */
export class ChainVerifier {
  private last: { epoch: string; seq: number; hash: string } | undefined;

  constructor(
    readonly topic: string,
    /** The hash before the first entry that will be given, when known. */
    private previous?: string,
  ) {}

  /** Checks the next entry; a break is returned (and the walk goes on from the stored hash). */
  check(entry: HistoryEntry): ChainBreak | undefined {
    const last = this.last;
    const previous = this.previousOf(entry);
    this.last = { epoch: entry.epoch, seq: entry.seq, hash: entry.hash };
    this.previous = undefined;
    const at = { topic: this.topic, epoch: entry.epoch, seq: entry.seq };
    if (last !== undefined && entry.seq !== last.seq + 1) return { ...at, reason: 'gap', expected: String(last.seq + 1), found: String(entry.seq) };
    if (previous === undefined) return undefined;
    const expected = entryHash(previous, entry);
    return expected === entry.hash ? undefined : { ...at, reason: 'hash', expected, found: entry.hash };
  }

  /** The hash an entry must link to; undefined for an anchor taken on trust. */
  private previousOf(entry: HistoryEntry): string | undefined {
    if (this.last === undefined) return this.previous ?? (entry.seq === 1 ? genesisHash(this.topic, entry.epoch) : undefined);
    if (entry.epoch !== this.last.epoch) return genesisHash(this.topic, entry.epoch);
    return this.last.hash;
  }
}
