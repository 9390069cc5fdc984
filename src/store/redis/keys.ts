/**
 * Every Redis key, channel and stream name BondX uses, under one namespace prefix (REDIS_PREFIX): the
 * store, the live feed, the dead letters, connection admission and the Socket.IO adapter all take their
 * names from here, and nothing else builds one (test/unit/redis-keys.test.ts checks both). As BullMQ's
 * queue-keys.ts does for its queues: one place to read the whole layout, and to change it.
 */

/**
 * The Redis Cluster hash tag of a topic: the keys (and the live channel) that carry it share one slot,
 * so a topic's meta and history can be changed by one script. This is the one place that chooses it:
 * one tag per topic today; a later move to one per entity (ISIN, user) changes only this function.
 */
export function tag(topic: string): string {
  return hashTag(topic);
}

/** `{name}`: Redis hashes only what is inside the first braces. */
function hashTag(name: string): string {
  return `{${name}}`;
}

export interface RedisKeyLayout {
  readonly prefix: string;
  // --- store (commit.lua, reset.lua, renew-epoch.lua get these as KEYS) ---------------------------
  /** hash: topic -> `<headSeq>|<epoch>|<updated_at>` (registry for `topics()`). */
  readonly topics: string;
  /** hash: source stream (e.g. `bondx.market/3`) -> last applied offset. */
  readonly offsets: string;
  /** sorted set: event_id -> arrival order (a counter); the newest DEDUP_WINDOW ids. */
  readonly dedup: string;
  /** hash: epoch, seq (head), updated_at (the newest entry's ts), hash (the chain head's), state (snapshot JSON). */
  meta(topic: string): string;
  /** stream: id `<seq>-0`, fields type, ts, event_ts, event_id, payload (JSON), epoch, hash. */
  history(topic: string): string;
  /** stream: signed audit checkpoints of the topic's head (hash chain), field `cp` (JSON); where no Kafka audit topic is configured. */
  auditCheckpoints(topic: string): string;
  // --- live feed ----------------------------------------------------------------------------------
  /** pub/sub channel: full HistoryEntry JSON of every committed entry. */
  live(topic: string): string;
  // --- dead letters -------------------------------------------------------------------------------
  /** list: dead letters, newest first (JSON), capped at DEAD_LETTERS_MAX_LEN. */
  readonly deadLetters: string;
  /** string counter: dead letters ever added. */
  readonly deadLetterCount: string;
  // --- connection admission -----------------------------------------------------------------------
  /** rate-limiter-flexible's key prefix for one attempt limiter (it appends `:<ip or user>`). */
  rateLimit(limiter: 'ip' | 'user'): string;
  /** hash: gateway id -> open connections of one user (hash-tagged by user). */
  userConnections(user: string): string;
  /** string with a TTL: present while the gateway is alive. */
  gatewayAlive(gatewayId: string): string;
  // --- Socket.IO adapter --------------------------------------------------------------------------
  /** @socket.io/redis-streams-adapter's stream name (and channel prefix) for one engine. */
  socketIoAdapter(engine: 'plain' | 'deflate'): string;
}

export function redisKeys(prefix: string): RedisKeyLayout {
  return {
    prefix,
    topics: `${prefix}:topics`,
    offsets: `${prefix}:offsets`,
    dedup: `${prefix}:dedup`,
    meta: (topic) => `${prefix}:${tag(topic)}:meta`,
    history: (topic) => `${prefix}:${tag(topic)}:h`,
    auditCheckpoints: (topic) => `${prefix}:${tag(topic)}:audit`,
    live: (topic) => `${prefix}:live:${tag(topic)}`,
    deadLetters: `${prefix}:dlq`,
    deadLetterCount: `${prefix}:dlq:count`,
    rateLimit: (limiter) => `${prefix}:rl:${limiter}`,
    userConnections: (user) => `${prefix}:uc:${hashTag(user)}`,
    gatewayAlive: (gatewayId) => `${prefix}:gw:${gatewayId}`,
    socketIoAdapter: (engine) => `${prefix}:${engine === 'deflate' ? 'sioz' : 'sio'}`,
  };
}
