/**
 * Every Redis key, channel and stream name BondX uses, under one namespace prefix (REDIS_PREFIX): the
 * store, the live feed, the dead letters, connection admission and the Socket.IO adapter all take their
 * names from here, and nothing else builds one (test/unit/redis-keys.test.ts checks both). As BullMQ's
 * queue-keys.ts does for its queues: one place to read the whole layout, and to change it.
 */

import { entityOf, userEntity } from '../../domain/topics.js';

/**
 * The Redis Cluster hash tag of a topic: the entity it belongs to (domain `entityOf`), so the keys (and
 * the live channel) of every topic of one entity share a slot with the entity's registry, dedup window
 * and applied offsets. An event's topics all belong to one entity, so the keys one commit touches are in
 * one slot and the commit script runs on a cluster. This is the one place that chooses it.
 */
export function tag(topic: string): string {
  return hashTag(entityOf(topic));
}

/** `{name}`: Redis hashes only what is inside the first braces. */
function hashTag(name: string): string {
  return `{${name}}`;
}

export interface RedisKeyLayout {
  readonly prefix: string;
  // --- store (commit.lua, reset.lua, renew-epoch.lua get these as KEYS) ---------------------------
  // An entity (domain `entityOf`; store `commitEntity`) keeps these three in its own slot, so no commit
  // touches a key outside its entity's slot; listing and resuming read them from every master (SCAN).
  /** hash: topic -> `<headSeq>|<epoch>|<updated_at>`: the entity's topics, for `topics()`. */
  registry(entity: string): string;
  /** hash: source stream (e.g. `bondx.market/3`) -> last offset applied to the entity. */
  offsets(entity: string): string;
  /** sorted set: event_id -> arrival order (a counter); the entity's newest DEDUP_WINDOW ids. */
  dedup(entity: string): string;
  /** SCAN MATCH patterns of every entity's registry and offsets hash. */
  readonly everyRegistry: string;
  readonly everyOffsets: string;
  /** hash: epoch, seq (head), updated_at (the newest entry's ts), hash (the chain head's), state (snapshot JSON). */
  meta(topic: string): string;
  /** stream: id `<seq>-0`, fields type, ts, event_ts, event_id, payload (JSON), epoch, hash. */
  history(topic: string): string;
  /** stream: signed audit checkpoints of the topic's head (hash chain), field `cp` (JSON); where no Kafka audit topic is configured. */
  auditCheckpoints(topic: string): string;
  // --- live feed ----------------------------------------------------------------------------------
  /** shard channel (SPUBLISH/SSUBSCRIBE: in the topic's slot, so a cluster does not copy it to every node): full HistoryEntry JSON of every committed entry. */
  live(topic: string): string;
  // --- dead letters -------------------------------------------------------------------------------
  /** list: dead letters, newest first (JSON), capped at DEAD_LETTERS_MAX_LEN (one slot with its counter: one MULTI). */
  readonly deadLetters: string;
  /** string counter: dead letters ever added. */
  readonly deadLetterCount: string;
  // --- connection admission -----------------------------------------------------------------------
  /** rate-limiter-flexible's key prefix for one attempt limiter (it appends `:<ip or user>`). */
  rateLimit(limiter: 'ip' | 'user'): string;
  /** hash: gateway id -> open connections of one user (in the slot of the user's topics). */
  userConnections(user: string): string;
  /** string with a TTL: present while the gateway is alive (all in one slot: read with one MGET). */
  gatewayAlive(gatewayId: string): string;
  // --- delivery record (without Kafka) ------------------------------------------------------------
  /** stream: a user's delivery ranges (`store/deliveries.ts`), in the slot of the user's topics. */
  deliveries(user: string): string;
  // --- Socket.IO adapter --------------------------------------------------------------------------
  /** @socket.io/redis-streams-adapter's stream name (and channel prefix) for one engine. */
  socketIoAdapter(engine: 'plain' | 'deflate'): string;
}

/**
 * `<p>:{<entity>}:<topic>:<what>`: in the entity's slot, and the topic's own — an entity has several
 * topics (a user's trading, portfolio, risk, alerts, mobile), each with its own head and history.
 */
function topicKey(prefix: string, topic: string, what: string): string {
  return `${prefix}:${tag(topic)}:${topic}:${what}`;
}

/** `<p>:{<entity>}:<what>`: the entity's own keys (a topic's end in `:meta`, `:h`, `:audit`, so a pattern on these names matches no topic key). */
function entityKey(prefix: string, entity: string, what: string): string {
  return `${prefix}:${hashTag(entity)}:${what}`;
}

/** A SCAN MATCH pattern of one kind of entity key: the prefix taken literally (glob characters escaped). */
function everyEntityKey(prefix: string, what: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, '\\$&')}:{*}:${what}`;
}

export function redisKeys(prefix: string): RedisKeyLayout {
  return {
    prefix,
    registry: (entity) => entityKey(prefix, entity, 'topics'),
    offsets: (entity) => entityKey(prefix, entity, 'offsets'),
    dedup: (entity) => entityKey(prefix, entity, 'dedup'),
    everyRegistry: everyEntityKey(prefix, 'topics'),
    everyOffsets: everyEntityKey(prefix, 'offsets'),
    meta: (topic) => topicKey(prefix, topic, 'meta'),
    history: (topic) => topicKey(prefix, topic, 'h'),
    auditCheckpoints: (topic) => topicKey(prefix, topic, 'audit'),
    live: (topic) => `${prefix}:live:${tag(topic)}:${topic}`,
    deadLetters: `${prefix}:{dlq}`,
    deadLetterCount: `${prefix}:{dlq}:count`,
    rateLimit: (limiter) => `${prefix}:rl:${limiter}`,
    userConnections: (user) => `${prefix}:uc:${hashTag(userEntity(user))}`,
    gatewayAlive: (gatewayId) => `${prefix}:{gw}:${gatewayId}`,
    deliveries: (user) => `${prefix}:dl:${hashTag(userEntity(user))}`,
    socketIoAdapter: (engine) => `${prefix}:${engine === 'deflate' ? 'sioz' : 'sio'}`,
  };
}
