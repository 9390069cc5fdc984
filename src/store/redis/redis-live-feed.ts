import { Redis } from 'ioredis';
import type { HistoryEntry, LiveFeed, Unsubscribe } from '../topic-store.js';
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
  onResumed?: () => void;
}

/**
 * LiveFeed on Redis pub/sub. Uses its own subscriber connection (a connection in subscriber mode
 * cannot run other commands): a duplicate of the given client, or a new one from a URL.
 * One channel per topic (`keys.live(topic)`, no patterns), so a gateway only receives the
 * topics it has listeners for: SUBSCRIBE on the first listener of a topic, UNSUBSCRIBE after the last.
 * Entries are delivered in arrival order, which is commit order (PUBLISH runs inside the commit script).
 * Messages published while the connection is down are lost: consumers detect the gap by seq, and are
 * told `onResumed` once the re-established connection listens again (ioredis re-subscribes on ready;
 * a PING queued behind those SUBSCRIBEs answers once they took effect).
 */
export class RedisLiveFeed implements LiveFeed {
  readonly keys: RedisKeyLayout;
  private readonly sub: Redis;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly topicByChannel = new Map<string, string>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly onError: (error: unknown, topic: string) => void;
  private closed = false;
  /** Whether the connection was ready before: a later `ready` is a reconnect. */
  private wasReady = false;

  constructor(redis: Redis | string, options: RedisLiveFeedOptions) {
    this.keys = redisKeys(options.prefix);
    this.onError = options.onError ?? (() => {});
    this.sub = typeof redis === 'string' ? new Redis(redis) : redis.duplicate();
    this.sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
    this.sub.on('ready', () => {
      if (this.wasReady) this.resumed();
      this.wasReady = true;
    });
  }

  subscribe(topic: string, onEntry: (entry: HistoryEntry) => void, onResumed?: () => void): Unsubscribe {
    if (this.closed) return () => {};
    let set = this.listeners.get(topic);
    if (!set) {
      this.listeners.set(topic, (set = new Set()));
      const channel = this.keys.live(topic);
      this.topicByChannel.set(channel, topic);
      this.track(this.sub.subscribe(channel), topic);
    }
    const listeners = set;
    const listener: Listener = { onEntry, ...(onResumed ? { onResumed } : {}) };
    listeners.add(listener);
    return () => {
      if (!listeners.delete(listener) || listeners.size > 0 || this.listeners.get(topic) !== listeners) return;
      this.listeners.delete(topic);
      const channel = this.keys.live(topic);
      this.topicByChannel.delete(channel);
      if (!this.closed) this.track(this.sub.unsubscribe(channel), topic);
    };
  }

  /** Resolves once every SUBSCRIBE/UNSUBSCRIBE issued so far is acknowledged by Redis (rejects if one failed). */
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
    const listeners = this.listeners.get(topic);
    if (!listeners) return;
    let entry: HistoryEntry;
    try {
      entry = parseEntry(message);
    } catch (error) {
      this.onError(error, topic);
      return;
    }
    for (const listener of [...listeners]) {
      try {
        listener.onEntry(entry);
      } catch (error) {
        this.onError(error, topic);
      }
    }
  }

  private resumed(): void {
    this.sub.ping().then(
      () => {
        for (const [topic, listeners] of this.listeners) {
          for (const listener of [...listeners]) {
            try {
              listener.onResumed?.();
            } catch (error) {
              this.onError(error, topic);
            }
          }
        }
      },
      (error: unknown) => this.onError(error, '*'),
    );
  }
}

/** Parses a published entry (built by commit.lua) and checks its shape. */
export function parseEntry(message: string): HistoryEntry {
  return toHistoryEntry(JSON.parse(message));
}
