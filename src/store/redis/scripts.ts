import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ChainHead, HistoryEntry, SourcePosition } from '../topic-store.js';
import { entityOf } from '../../domain/topics.js';
import { genesisHash } from '../chain.js';
import type { RedisClient } from './client.js';
import type { RedisKeyLayout } from './keys.js';

// ---------------------------------------------------------------------------------------------------
// Script sources: read once from ./scripts/*.lua (next to this module). `tsc` does not copy .lua files,
// so a build must copy src/store/redis/scripts/ to dist/store/redis/scripts/; as a fallback the sources
// are looked up in the source tree.

const SCRIPTS = {
  commit: 'bxCommit',
  reset: 'bxReset',
  renewEpoch: 'bxRenewEpoch',
} as const;
type ScriptName = keyof typeof SCRIPTS;

let sources: Record<ScriptName, string> | undefined;

function scriptDir(): string {
  const candidates = [new URL('./scripts/', import.meta.url), new URL('../../../src/store/redis/scripts/', import.meta.url)];
  for (const url of candidates) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}commit.lua`)) return dir;
  }
  throw new Error(`Redis Lua scripts not found (looked in ${candidates.map((u) => fileURLToPath(u)).join(', ')})`);
}

/** The Lua source of a script, read from disk on first use and cached for the process. */
export function scriptSource(name: ScriptName): string {
  if (!sources) {
    const dir = scriptDir();
    const load = (file: string) => readFileSync(`${dir}${file}.lua`, 'utf8');
    sources = { commit: load('commit'), reset: load('reset'), renewEpoch: load('renew-epoch') };
  }
  return sources[name];
}

// ---------------------------------------------------------------------------------------------------
// Typed wrappers. Each script is registered once per client with `defineCommand` (EVALSHA, falling back
// to EVAL on NOSCRIPT, handled by ioredis); keys are variable in number, so numkeys is passed per call.

export interface CommitScriptChange {
  /** The entry as chained by the committer (src/store/chain.ts). */
  entry: HistoryEntry;
  stateJson: string;
  /**
   * The head the entry follows, checked before the event's first write (null: the topic must not exist);
   * undefined for a topic an earlier change of the run wrote (its head is that change's entry).
   */
  follows: ChainHead | null | undefined;
}

/** One event of a commit run: what `commit` would write for it alone. */
export interface CommitScriptEvent {
  eventId: string;
  eventTs: string;
  source?: SourcePosition;
  changes: CommitScriptChange[];
}

export interface CommitScriptInput {
  /** The run's entity (topic-store.ts `commitEntity`): its registry, offsets and dedup keys are the script's. */
  entity: string;
  maxLen: number;
  dedupWindow: number;
  /** Applied in order, each checked against what the ones before it wrote; a single commit is a run of one. */
  events: CommitScriptEvent[];
}

/** Why an event was not applied (nothing of it written). */
export type CommitRefusal =
  | { status: 'duplicate_event' | 'already_applied_offset' }
  | { status: 'offset_mismatch'; stored: string | null }
  | { status: 'head_mismatch'; topic: string; stored: number };

/** Every event applied, or the first that was not (`index`, 0-based): those before it are committed, it and the rest are not. */
export type CommitScriptResult = { status: 'ok' } | (CommitRefusal & { index: number });

export interface RedisScripts {
  commit(input: CommitScriptInput): Promise<CommitScriptResult>;
  /** Resolves true when the topic existed. */
  reset(topic: string): Promise<boolean>;
  /** Sets `candidate` as the topic's epoch if it is still `epoch`; resolves with the epoch now ('' = no topic). */
  renewEpoch(topic: string, epoch: string, candidate: string): Promise<string>;
}

type ScriptCall = (...args: (string | number)[]) => Promise<unknown>;

const definedOn = new WeakSet<RedisClient>();

function scriptCall(client: RedisClient, name: ScriptName): ScriptCall {
  if (!definedOn.has(client)) {
    for (const script of Object.keys(SCRIPTS) as ScriptName[]) client.defineCommand(SCRIPTS[script], { lua: scriptSource(script) });
    definedOn.add(client);
  }
  const fn: unknown = Reflect.get(client, SCRIPTS[name]);
  if (typeof fn !== 'function') throw new Error(`ioredis did not define ${SCRIPTS[name]}`);
  return (...args) => fn.apply(client, args) as Promise<unknown>;
}

/** Registers the scripts on `client` (once per client) and returns typed wrappers bound to `keys`. */
export function redisScripts(client: RedisClient, keys: RedisKeyLayout): RedisScripts {
  const commitCall = scriptCall(client, 'commit');
  const resetCall = scriptCall(client, 'reset');
  const renewEpochCall = scriptCall(client, 'renewEpoch');
  return {
    async commit(input) {
      const keyArgs: string[] = [keys.registry(input.entity), keys.offsets(input.entity), keys.dedup(input.entity)];
      const argv: (string | number)[] = [input.maxLen, input.dedupWindow, input.events.length];
      for (const event of input.events) {
        argv.push(event.eventId, event.eventTs, expectedOffsetArg(event.source), event.source?.stream ?? '', event.source?.offset ?? '', event.changes.length);
        for (const { entry, stateJson, follows } of event.changes) {
          keyArgs.push(keys.meta(entry.topic), keys.history(entry.topic));
          argv.push(entry.topic, keys.live(entry.topic), entry.type, JSON.stringify(entry.payload), stateJson, entry.epoch, entry.seq, entry.ts, entry.hash);
          // commit.lua: follows seq 0 = the topic must not exist, -1 = not checked.
          argv.push(follows === undefined ? -1 : (follows?.seq ?? 0), follows?.epoch ?? '', follows?.hash ?? '');
        }
      }
      return parseCommitReply(await commitCall(keyArgs.length, ...keyArgs, ...argv));
    },
    async reset(topic) {
      const reply = await resetCall(3, keys.registry(entityOf(topic)), keys.meta(topic), keys.history(topic), topic);
      return reply === 1;
    },
    async renewEpoch(topic, epoch, candidate) {
      const reply = await renewEpochCall(2, keys.registry(entityOf(topic)), keys.meta(topic), topic, epoch, candidate, keys.live(topic), genesisHash(topic, candidate));
      if (typeof reply !== 'string') throw new Error(`bxRenewEpoch: unexpected reply ${JSON.stringify(reply)}`);
      return reply;
    },
  };
}

/** commit.lua's ARGV[4]: '' = no expectation, '-' = no offset stored yet, else the offset. */
function expectedOffsetArg(source: SourcePosition | undefined): string {
  if (source?.after === undefined) return '';
  return source.after ?? '-';
}

/** Checks the shape of a parsed entry as published by commit.lua. */
export function toHistoryEntry(value: unknown): HistoryEntry {
  if (typeof value !== 'object' || value === null) throw new Error('history entry is not an object');
  const e = value as Record<string, unknown>;
  const payload = e.payload;
  if (
    typeof e.topic !== 'string' ||
    typeof e.epoch !== 'string' ||
    typeof e.seq !== 'number' ||
    (e.type !== 'delta' && e.type !== 'alert') ||
    typeof e.ts !== 'string' ||
    typeof e.event_ts !== 'string' ||
    typeof e.event_id !== 'string' ||
    typeof e.hash !== 'string' ||
    typeof payload !== 'object' ||
    payload === null ||
    Array.isArray(payload) ||
    typeof (payload as Record<string, unknown>).kind !== 'string'
  ) {
    throw new Error('history entry has an unexpected shape');
  }
  return value as HistoryEntry;
}

function parseCommitReply(reply: unknown): CommitScriptResult {
  if (!Array.isArray(reply) || reply.length === 0) throw new Error(`bxCommit: unexpected reply ${JSON.stringify(reply)}`);
  const [status, position, ...rest]: unknown[] = reply;
  if (status === 'ok') return { status };
  if (typeof position === 'number' && position >= 1) {
    const index = position - 1;
    if (status === 'duplicate_event' || status === 'already_applied_offset') return { status, index };
    if (status === 'offset_mismatch' && typeof rest[0] === 'string') return { status, index, stored: rest[0] === '' ? null : rest[0] };
    if (status === 'head_mismatch' && typeof rest[0] === 'string' && typeof rest[1] === 'number') return { status, index, topic: rest[0], stored: rest[1] };
  }
  throw new Error(`bxCommit: unexpected reply ${JSON.stringify(reply)}`);
}
