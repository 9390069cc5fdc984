import { Redis } from 'ioredis';
import type { HistoryEntry, LiveFeed, Unsubscribe } from '../topic-store.js';
import { duplicateClient, type RedisClient } from './client.js';
import { redisKeys, type RedisKeyLayout } from './keys.js';
import { toHistoryEntry } from './scripts.js';

export interface RedisLiveFeedOptions {
  /** Namespace (REDIS_PREFIX), as given to the RedisTopicStore. */
  prefix: string;
  /** Called for a message that does not parse, a listener that throws, or a failed (un)subscribe. */
  onError?: (error: unknown, topic: string) => void;
}

interface Listener {
  onEntry(entry: HistoryEntry): void;
  onStale?: () => void;
}

/**
 * LiveFeed on Redis sharded pub/sub (SSUBSCRIBE to the shard channels commit.lua SPUBLISHes on, Redis >= 7:
 * on a cluster a message stays on its topic's shard). Uses its own subscriber connection (a connection in subscriber mode
 * cannot run other commands): a duplicate of the given client, or a new one from a URL.
 * One channel per topic (`keys.live(topic)`, no patterns), so a gateway only receives the
 * topics it has listeners for: SSUBSCRIBE on the first listener of a topic, SUNSUBSCRIBE after the last.
 * Entries are delivered in arrival order, which is commit order (PUBLISH runs inside the commit script).
 * Messages published while the connection is down are lost: consumers detect the gap by seq, and are
 * told `onStale` once the re-established connection listens again (ioredis re-subscribes on ready;
 * a PING queued behind those SSUBSCRIBEs answers once they took effect). A renewed epoch is announced
 * on the channel too (`{"stale":true}`, renew-epoch.lua) and passed on as `onStale`.
 */
export class RedisLiveFeed implements LiveFeed {
  readonly keys: RedisKeyLayout;
  private readonly sub: RedisClient;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly topicByChannel = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly onError: (error: unknown, topic: string) => void;
  private closed = false;
  /** Whether the connection was ready before: a later `ready` is a reconnect. */
  private wasReady = false;

  constructor(redis: RedisClient | string, options: RedisLiveFeedOptions) {
    this.keys = redisKeys(options.prefix);
    this.onError = options.onError ?? (() => {});
    this.sub = typeof redis === 'string' ? new Redis(redis) : duplicateClient(redis);
    this.sub.on('smessage', (channel: string, message: string) => this.deliver(channel, message));
    this.sub.on('ready', () => {
      if (this.wasReady) this.reconnected();
      this.wasReady = true;
    });
  }

  subscribe(topic: string, onEntry: (entry: HistoryEntry) => void, onStale?: () => void): Unsubscribe {
    if (this.closed) return () => {};
    let set = this.listeners.get(topic);
    if (!set) {
      this.listeners.set(topic, (set = new Set()));
      const channel = this.keys.live(topic);
      this.topicByChannel.set(channel, topic);
      this.track(this.sub.ssubscribe(channel), topic);
    }
    const listeners = set;
    const listener: Listener = { onEntry, ...(onStale ? { onStale } : {}) };
    listeners.add(listener);
    return () => {
      if (!listeners.delete(listener) || listeners.size > 0 || this.listeners.get(topic) !== listeners) return;
      this.listeners.delete(topic);
      const channel = this.keys.live(topic);
      this.topicByChannel.delete(channel);
      if (!this.closed) this.track(this.sub.sunsubscribe(channel), topic);
    };
  }

  /** Resolves once every SSUBSCRIBE/SUNSUBSCRIBE issued so far is acknowledged by Redis (rejects if one failed). */
  async ready(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.topicByChannel.clear();
    await Promise.allSettled([...this.inFlight]);
    if (this.sub.status !== 'end') await this.sub.quit().catch(() => this.sub.disconnect());
  }

  private track(op: Promise<unknown>, topic: string): void {
    const tracked = op.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    tracked.catch((error: unknown) => this.onError(error, topic));
  }

  private deliver(channel: string, message: string): void {
    const topic = this.topicByChannel.get(channel);
    if (topic === undefined) return; // unsubscribed while the message was in flight
    let parsed: HistoryEntry | 'stale';
    try {
      parsed = parseMessage(message);
    } catch (error) {
      this.onError(error, topic);
      return;
    }
    this.notify(topic, parsed === 'stale' ? (l) => l.onStale?.() : (l) => l.onEntry(parsed));
  }

  private reconnected(): void {
    this.sub.ping().then(
      () => {
        for (const topic of this.listeners.keys()) this.notify(topic, (l) => l.onStale?.());
      },
      (error: unknown) => this.onError(error, '*'),
    );
  }

  /** Calls every listener of `topic`; one that throws is reported and does not stop the others. */
  private notify(topic: string, call: (listener: Listener) => void): void {
    for (const listener of [...(this.listeners.get(topic) ?? [])]) {
      try {
        call(listener);
      } catch (error) {
        this.onError(error, topic);
      }
    }
  }
}

/** Parses a message of a live channel: a committed entry (commit.lua), or a staleness notice (renew-epoch.lua). */
export function parseMessage(message: string): HistoryEntry | 'stale' {
  const value: unknown = JSON.parse(message);
  if (typeof value === 'object' && value !== null && (value as { stale?: unknown }).stale === true) return 'stale';
  return toHistoryEntry(value);
}
