import type { Envelope, SubscribeMessage } from '../protocol/messages.js';
import type { DeliveryEnd, DeliveryKind } from '../store/deliveries.js';
import type { HistoryEntry } from '../store/topic-store.js';
import type { DeliveryTrack } from './delivery-ranges.js';
import { batchEnvelope, snapshotEnvelope } from './envelope.js';
import type { Hub, Room, RoomMember } from './hub.js';
import type { Link } from './link.js';
import { recover, type RecoveryRequest, type RecoveryResult } from './recovery.js';
import type { TopicFeed } from './topic-feed.js';

/** What a subscription needs from its connection. */
export interface Subscriber {
  readonly stream: string;
  readonly link: Link;
  /** Sends one envelope straight to the client (snapshots, catch-up), counted. */
  send(envelope: Envelope): void;
  /** The topic's history was reset under the subscription: subscribe it again from a fresh snapshot. */
  resubscribe(topic: string): void;
}

/**
 * One topic followed by one connection: catching up, live in its room, or paused. Pausing (a slow
 * client's market data, or background mode) leaves the room and remembers the last seq the client
 * holds; resuming sends one conflated snapshot of the skipped range, then live again. A subscription
 * replaced or ended (`stop`) drops whatever catch-up it still had under way.
 */
export class Subscription implements RoomMember {
  private feed: TopicFeed | undefined;
  /** The room it is (or, while paused, was) a member of: set when it first goes live. */
  private room: Room | undefined;
  private stopped = false;
  /** Set while paused: the client has every seq up to here. */
  private pausedAfter: number | undefined;
  /** The feed's epoch when paused: a different one on resume means the history was reset meanwhile. */
  private pausedEpoch: string | undefined;
  /** While paused, keeps the hub from dropping the room (now without this member) and the feed under it. */
  private pauseHold: (() => void) | undefined;

  constructor(
    private readonly owner: Subscriber,
    private readonly hub: Hub,
    readonly request: SubscribeMessage,
    /** Market data may be conflated (skipped, then replaced by a fresh state); everything else never drops. */
    readonly conflatable: boolean,
    /** Where what it sends is recorded (absent: the delivery record is off). */
    private readonly track: DeliveryTrack | undefined,
  ) {}

  get topic(): string {
    return this.request.topic;
  }

  get stream(): string {
    return this.owner.stream;
  }

  get link(): Link {
    return this.owner.link;
  }

  get paused(): boolean {
    return this.pausedAfter !== undefined;
  }

  resync(): void {
    this.track?.end('resync', new Date().toISOString());
    this.owner.resubscribe(this.topic);
  }

  /** Catches up on `feed` and goes live in `room`; `resync` forces a fresh snapshot. */
  start(feed: TopicFeed, room: Room, resync: boolean): Promise<RecoveryResult | 'superseded'> {
    this.feed = feed;
    const { resume_from_seq: resumeFrom, epoch } = this.request;
    return this.catchUp(feed, room, { resync, ...(resumeFrom !== undefined ? { resumeFrom } : {}), ...(epoch !== undefined ? { epoch } : {}) });
  }

  /** Leaves the room, remembering the head the client holds; false if it was not live. */
  pause(): boolean {
    const { room, feed } = this;
    if (this.paused || !room || !feed || !room.has(this)) return false;
    // Everything buffered for the room is sent first, so the client holds every seq up to the head.
    room.flush();
    room.leave(this);
    this.track?.close('pause', new Date().toISOString());
    this.pausedAfter = feed.head;
    this.pausedEpoch = feed.epoch;
    this.pauseHold = this.hub.hold(this.topic);
    return true;
  }

  /** Back to live with one conflated snapshot (a re-sync if the epoch changed); resolves with the entries skipped. */
  async resume(): Promise<number> {
    const { pausedAfter: after, room, feed } = this;
    if (after === undefined || !room || !feed) return 0;
    const hold = this.pauseHold;
    this.pausedAfter = undefined;
    this.pauseHold = undefined;
    // History reset while paused: the skipped range means nothing in the new epoch, so re-sync.
    const request: RecoveryRequest = this.pausedEpoch === feed.epoch ? { conflatedAfter: after } : { resync: true };
    try {
      const result = await this.catchUp(feed, room, request);
      hold?.();
      return result !== 'superseded' && 'snapshot_seq' in result ? Math.max(0, result.snapshot_seq - after) : 0;
    } catch (err) {
      // Stay paused (keeping the hold), so the next flow check tries again rather than going silent.
      this.pausedAfter = after;
      this.pauseHold = hold;
      throw err;
    }
  }

  /** Ends it (`end`: why, for the delivery record): out of its room, holds released, any catch-up under way stops. */
  stop(end: DeliveryEnd): void {
    this.stopped = true;
    this.room?.leave(this);
    this.track?.end(end, new Date().toISOString());
    this.pauseHold?.();
    this.pauseHold = undefined;
    this.hub.release(this.topic);
  }

  private catchUp(feed: TopicFeed, room: Room, request: RecoveryRequest): Promise<RecoveryResult | 'superseded'> {
    const correlationId = this.request.correlation_id ?? null;
    const { track } = this;
    // What the delivery record says of this catch-up: entries continue a resume until a snapshot is sent.
    let entriesKind: DeliveryKind = request.resumeFrom !== undefined && request.conflatedAfter === undefined && request.resync !== true ? 'resume' : 'live';
    let held = request.conflatedAfter ?? request.resumeFrom ?? 0;
    return recover(feed, request, {
      current: () => !this.stopped,
      snapshot: (snapshot, marks) => {
        this.owner.send(snapshotEnvelope(snapshot, room.filter.view(snapshot.state), marks, correlationId));
        track?.sent(marks.resync === true ? 'resync' : marks.conflated !== undefined ? 'conflated' : 'snapshot', snapshot.epoch, snapshot.seq, snapshot.seq, new Date().toISOString());
        entriesKind = 'live';
        held = snapshot.seq;
      },
      entries: (entries) => {
        this.sendEntries(entries, room);
        const first = entries[0];
        const last = entries.at(-1);
        if (!track || !first || !last) return;
        track.sent(entriesKind, feed.epoch, first.seq, last.seq, new Date().toISOString());
        held = last.seq;
      },
      live: () => {
        this.room = room;
        room.join(this);
        track?.follow(room, feed.epoch, held, new Date().toISOString());
      },
    });
  }

  /** Sends catch-up entries directly, batched the same way the room batches live ones. */
  private sendEntries(entries: HistoryEntry[], room: Room): void {
    const envelopes = entries.filter((e) => room.filter.accepts(e)).map((e) => room.filter.envelope(e));
    const size = room.batching.size;
    if (size <= 1) for (const envelope of envelopes) this.owner.send(envelope);
    else for (let i = 0; i < envelopes.length; i += size) this.owner.send(batchEnvelope(room.topic, envelopes.slice(i, i + size)));
  }
}

