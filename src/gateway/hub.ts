import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Envelope } from '../protocol/messages.js';
import type { HistoryEntry, LiveFeed, TopicStore } from '../store/topic-store.js';
import { batchEnvelope } from './envelope.js';
import { Frame, type Fanout, type Link } from './link.js';
import type { SeqCursor } from './delivery-ranges.js';
import type { DeliveryFilter } from './subtopics.js';
import { TopicFeed, type Outlet } from './topic-feed.js';
import { turnEnd, type TurnTask } from './turn.js';

/** One subscriber in a room (a subscription of one connection). */
export interface RoomMember {
  /** The member's stream, for per-stream message counts. */
  readonly stream: string;
  readonly link: Link;
  /** The topic's history was reset under the room: re-sync from a fresh snapshot. */
  resync(): void;
}

/** How entries reach a room's members: one frame each, or grouped into `batch` frames. */
export interface Batching {
  /** Most envelopes per batch frame; 1 = no batching. */
  size: number;
}

export const NO_BATCHING: Batching = { size: 1 };

/**
 * Subscribers of one topic with the same filter and batching on one transport: the unit of
 * broadcast. Each envelope (or batch) is built and serialised once for all members.
 */
export class Room implements Outlet, TurnTask, SeqCursor {
  /** The room's membership, its only record: transports with native rooms mirror it through join/leave. */
  private readonly members = new Set<RoomMember>();
  /** Members per stream, so a broadcast is counted without walking the set. */
  private readonly byStream = new Map<string, number>();
  private pending: Envelope[] = [];
  /** Upstream event times (ms) of the pending entries, for delivery latency. */
  private pendingTs: number[] = [];
  /** Seq and epoch of the last entry broadcast: how far every member's live delivery range reaches (delivery-ranges.ts). */
  lastSeq = 0;
  epoch = '';

  constructor(
    readonly name: string,
    readonly topic: string,
    readonly filter: DeliveryFilter,
    readonly batching: Batching,
    private readonly fanout: Fanout,
    private readonly metrics: Metrics,
  ) {}

  get size(): number {
    return this.members.size;
  }

  has(member: RoomMember): boolean {
    return this.members.has(member);
  }

  /** From now on, the room's entries reach `member`. Whatever the room still buffers is older than what it was sent directly: it goes to the others first. */
  join(member: RoomMember): void {
    if (this.members.has(member)) return;
    this.flush();
    this.members.add(member);
    this.byStream.set(member.stream, (this.byStream.get(member.stream) ?? 0) + 1);
    member.link.join?.(this.name);
  }

  leave(member: RoomMember): void {
    if (!this.members.delete(member)) return;
    const n = (this.byStream.get(member.stream) ?? 1) - 1;
    if (n > 0) this.byStream.set(member.stream, n);
    else this.byStream.delete(member.stream);
    member.link.leave?.(this.name);
  }

  /**
   * Batching has no window and no timer: entries arriving in one event-loop turn go out together at
   * the turn's end (turn.ts), at most `size` per frame. A quiet topic's entry leaves in the turn it
   * arrived in, as soon as unbatched ones do (a lone entry is a plain delta); under load a turn holds
   * more entries, so frames fill up exactly when the work they save is needed.
   */
  deliver(entry: HistoryEntry): void {
    if (this.members.size === 0 || !this.filter.accepts(entry)) return;
    const envelope = this.filter.envelope(entry);
    const eventTs = Date.parse(entry.event_ts);
    if (this.batching.size <= 1) {
      this.send([envelope], [eventTs]);
      return;
    }
    this.pending.push(envelope);
    this.pendingTs.push(eventTs);
    if (this.pending.length >= this.batching.size) this.flush();
    else turnEnd.defer('batches', this);
  }

  turnEnded(): void {
    this.flush();
  }

  /** Sends what is buffered. Called before a member joins, so it never receives entries it already got. */
  flush(): void {
    if (this.pending.length === 0) return;
    const envelopes = this.pending;
    const eventTs = this.pendingTs;
    this.pending = [];
    this.pendingTs = [];
    this.send(envelopes, eventTs);
  }

  private send(envelopes: Envelope[], eventTs: number[]): void {
    const last = envelopes[envelopes.length - 1] as Envelope;
    const envelope = envelopes.length === 1 ? last : batchEnvelope(this.topic, envelopes);
    // The delivery record's whole cost per broadcast: two fields, whatever the number of members.
    this.lastSeq = last.seq ?? this.lastSeq;
    this.epoch = String(last.meta.epoch);
    if (this.fanout.broadcast) this.fanout.broadcast(this.name, envelope);
    else {
      const frame = new Frame(envelope); // serialised once for the whole room
      for (const member of this.members) member.link.write(frame);
    }
    // Once per broadcast, not per socket: latency samples per entry, sent count = members per stream.
    const now = Date.now();
    for (const ts of eventTs) this.metrics.observeLatency(ts, now);
    this.metrics.broadcastSent(envelope.type, this.byStream);
  }

  reset(): void {
    this.pending = [];
    this.pendingTs = [];
    for (const member of [...this.members]) member.resync();
    // The next entries are another epoch's seqs; only now: each member's range ended where the room had got to.
    this.lastSeq = 0;
    this.epoch = '';
  }

  /** A closed room sends nothing more, even if its turn's flush is still due. */
  close(): void {
    this.pending = [];
    this.pendingTs = [];
  }
}

interface FeedSlot {
  feed: TopicFeed;
  rooms: Map<string, Room>;
}

/**
 * Per-process registry of live topics: one TopicFeed per subscribed topic, and its rooms. Feeds start
 * on the first subscriber and stop when the last room empties, so an idle topic costs nothing.
 */
export class Hub {
  private readonly slots = new Map<string, FeedSlot>();
  /** Per topic, subscribers that hold the feed without being in a room (catching up, or paused). */
  private readonly holds = new Map<string, number>();

  constructor(
    readonly store: TopicStore,
    private readonly live: LiveFeed,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  async feed(topic: string): Promise<TopicFeed> {
    let slot = this.slots.get(topic);
    if (!slot) {
      slot = { feed: new TopicFeed(topic, this.store, this.live, this.log), rooms: new Map() };
      this.slots.set(topic, slot);
    }
    await slot.feed.ready;
    return slot.feed;
  }

  /** The room for (transport, topic, filter, batching), created on demand. */
  room(fanout: Fanout, topic: string, filter: DeliveryFilter, batching: Batching): Room {
    const slot = this.slots.get(topic);
    if (!slot) throw new Error(`no feed for ${topic}`);
    const name = `${fanout.name}:${topic}|${filter.key}|b${batching.size}`;
    let room = slot.rooms.get(name);
    if (!room) {
      room = new Room(name, topic, filter, batching, fanout, this.metrics);
      slot.rooms.set(name, room);
      slot.feed.addOutlet(room);
    }
    return room;
  }

  /** Drops empty rooms, and the feed when no room is left, once nobody is catching up on the topic. */
  release(topic: string): void {
    const slot = this.slots.get(topic);
    if (!slot) return;
    // A subscriber still catching up holds a room it has not joined yet (members 0): dropping that room
    // now would detach it from the feed, and the subscriber would join a room that never gets entries.
    // The last catching-up subscriber to finish calls release again and cleans up then.
    if (this.holdCount(topic) > 0) return;
    for (const [name, room] of slot.rooms) {
      if (room.size === 0) {
        room.close();
        slot.rooms.delete(name);
        slot.feed.removeOutlet(room);
      }
    }
    if (slot.rooms.size === 0) {
      slot.feed.close();
      this.slots.delete(topic);
    }
  }

  /** Marks a subscriber catching up, so the feed is kept while it has not joined a room yet. */
  hold(topic: string): () => void {
    this.holds.set(topic, this.holdCount(topic) + 1);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.holdCount(topic) - 1;
      if (n > 0) this.holds.set(topic, n);
      else this.holds.delete(topic);
      this.release(topic);
    };
  }

  private holdCount(topic: string): number {
    return this.holds.get(topic) ?? 0;
  }

  head(topic: string): number | undefined {
    return this.slots.get(topic)?.feed.head;
  }

  /** Live topics with their subscriber counts (for health / topics endpoints). */
  stats(): { topic: string; head: number; subscribers: number }[] {
    return [...this.slots].map(([topic, slot]) => ({
      topic,
      head: slot.feed.head,
      subscribers: [...slot.rooms.values()].reduce((n, r) => n + r.size, 0),
    }));
  }

  close(): void {
    for (const slot of this.slots.values()) slot.feed.close();
    this.slots.clear();
  }
}
