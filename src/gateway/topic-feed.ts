import type { Logger } from '../observability/logger.js';
import type { HistoryEntry, HistoryRead, LiveFeed, Snapshot, TopicStore, Unsubscribe } from '../store/topic-store.js';

/** Receives a topic's entries in seq order, each exactly once. Implemented by transports' rooms. */
export interface Outlet {
  deliver(entry: HistoryEntry): void;
  /** The topic's history was reset (new epoch): members must re-sync from a fresh snapshot. */
  reset(): void;
}

/**
 * One per topic per gateway process while anyone subscribes: turns the store's live notifications
 * into a contiguous, duplicate-free sequence (filling gaps from history), keeps a short ring of recent
 * entries so a subscriber can switch from catch-up to live without a gap, and hands each entry to
 * the topic's outlets (rooms).
 */
export class TopicFeed {
  epoch = '';
  /** Highest seq handed to outlets. */
  head = 0;
  readonly ready: Promise<void>;
  private readonly ring: HistoryEntry[] = [];
  private readonly outlets = new Set<Outlet>();
  private readonly inbox: HistoryEntry[] = [];
  private draining = false;
  private closed = false;
  /** A store re-read was asked for while the feed was busy (see recheck). */
  private recheckDue = false;
  private initialised = false;
  private waiters: { seq: number; resolve: () => void }[] = [];
  /** Head when the feed started: entries up to it were never handed out by this feed. */
  private startHead = 0;
  private readonly unsubscribe: Unsubscribe;

  constructor(
    readonly topic: string,
    private readonly store: TopicStore,
    private readonly live: LiveFeed,
    private readonly log: Logger,
    private readonly ringSize = 2048,
  ) {
    // Listen before reading the head (init), so nothing committed in between is missed.
    this.unsubscribe = live.subscribe(
      topic,
      (entry) => this.receive(entry),
      () => void this.recheck(),
    );
    this.ready = this.init();
  }

  private async init(): Promise<void> {
    // The head is read once the subscription listens: an entry committed before that was published to
    // nobody, and a head read before it would leave the feed behind it (at seq 0, with no epoch, for a
    // topic created as it opened). A failed subscribe was reported by the live feed itself.
    await this.live.ready().catch(() => undefined);
    const read = await this.store.readAfter(this.topic, Number.MAX_SAFE_INTEGER, 0);
    this.epoch = read.epoch;
    this.head = read.headSeq;
    this.startHead = read.headSeq;
    this.initialised = true;
    this.drain();
  }

  addOutlet(outlet: Outlet): void {
    this.outlets.add(outlet);
  }

  removeOutlet(outlet: Outlet): void {
    this.outlets.delete(outlet);
  }

  /** Entries with seq in (afterSeq, head] if the ring still holds all of them, else null. */
  recentAfter(afterSeq: number): HistoryEntry[] | null {
    if (afterSeq >= this.head) return [];
    const first = this.ring[0];
    if (!first || first.seq > afterSeq + 1) return null;
    return this.ring.slice(afterSeq + 1 - first.seq);
  }

  historyAfter(afterSeq: number, limit: number): Promise<HistoryRead> {
    return this.store.readAfter(this.topic, afterSeq, limit);
  }

  snapshot(): Promise<Snapshot | null> {
    return this.store.snapshot(this.topic);
  }

  /** Resolves once the feed has handed out `seq` (or after `timeoutMs`, returning false). */
  waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.head >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { seq, resolve: () => resolve(true) };
      this.waiters.push(waiter);
      setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs).unref();
    });
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.outlets.clear();
  }

  /**
   * The live feed says the store may have changed in a way no entry showed: entries lost at the end of
   * a burst while its connection was cut (a later entry would reveal them, but a quiet topic may not have
   * one for long), or a renewed epoch (no entry carries it until the next commit).
   */
  private async recheck(): Promise<void> {
    // A gap fill or epoch renewal under way re-reads the store itself; look again once it is done.
    if (this.draining || !this.initialised) {
      this.recheckDue = true;
      return;
    }
    try {
      const read = await this.store.readAfter(this.topic, Number.MAX_SAFE_INTEGER, 0);
      if (this.closed || !this.initialised) return;
      if (read.epoch !== this.epoch && read.epoch !== '') {
        this.log.warn({ topic: this.topic, epoch: this.epoch, now: read.epoch }, 'epoch changed without an entry to show it; members re-sync');
        this.resetTo(read.epoch, read.headSeq);
      } else if (read.headSeq > this.head) {
        const last = (await this.store.readAfter(this.topic, read.headSeq - 1, 1)).entries;
        // Entries keep the epoch they were committed in: a head entry of an older one (renewed, nothing
        // committed since) is no news of this epoch, whose numbering starts at the store's head.
        if (last.some((entry) => entry.epoch !== read.epoch)) this.resetTo(read.epoch, read.headSeq);
        else {
          // As if the next entry had arrived: the gap before it is filled from history, in order.
          this.inbox.push(...last);
          this.drain();
        }
      }
    } catch (err) {
      this.log.error({ err, topic: this.topic }, 're-reading the store after a live-feed notice failed');
    }
  }

  private receive(entry: HistoryEntry): void {
    this.inbox.push(entry);
    this.drain();
  }

  /** Processes the inbox in order; a gap is filled from history before anything after it. */
  private drain(): void {
    if (!this.initialised || this.draining) return;
    if (this.recheckDue) {
      this.recheckDue = false;
      void this.recheck();
    }
    while (this.inbox.length > 0) {
      const entry = this.inbox[0] as HistoryEntry;
      if (entry.epoch !== this.epoch && this.epoch !== '') {
        this.resetTo(entry.epoch);
        continue;
      }
      if (this.epoch === '') this.epoch = entry.epoch;
      if (entry.seq <= this.head) {
        this.inbox.shift();
        if (this.rewrites(entry)) {
          this.renewEpoch(entry);
          return;
        }
        continue;
      }
      if (entry.seq === this.head + 1) {
        this.inbox.shift();
        this.accept(entry);
        continue;
      }
      this.draining = true;
      void this.fillGap(entry.seq).finally(() => {
        this.draining = false;
        this.drain();
      });
      return;
    }
  }

  /**
   * Whether `entry` names a seq this feed already handed out with other content: the store's history
   * was rewritten under the same epoch (Redis restored from an older snapshot and new events committed
   * before anything noticed). A rebuilt identical entry is just a duplicate. A seq handed out but no
   * longer in the ring cannot be compared, so it counts as rewritten: a needless re-sync is safe, two
   * different entries under one (epoch, seq) are not.
   */
  private rewrites(entry: HistoryEntry): boolean {
    if (entry.seq <= this.startHead) return false;
    const first = this.ring[0];
    const held = first ? this.ring[entry.seq - first.seq] : undefined;
    if (!held || held.seq !== entry.seq) return true;
    return held.event_id !== entry.event_id || held.type !== entry.type || JSON.stringify(held.payload) !== JSON.stringify(entry.payload);
  }

  /**
   * Gives the topic a new epoch in the store (once, however many gateways notice) and starts over from
   * the store's head: every member re-syncs, and every client holding the old epoch will on resume.
   */
  private renewEpoch(entry: HistoryEntry): void {
    this.log.error({ topic: this.topic, epoch: this.epoch, seq: entry.seq, head: this.head }, 'history rewritten under a served epoch; renewing the epoch');
    this.draining = true;
    void this.restart(entry.epoch).finally(() => {
      this.draining = false;
      this.drain();
    });
  }

  private async restart(epoch: string): Promise<void> {
    while (!this.closed) {
      try {
        const renewed = await this.store.renewEpoch(this.topic, epoch);
        const read = await this.store.readAfter(this.topic, Number.MAX_SAFE_INTEGER, 0);
        // What the inbox holds is older than the store's head now: a later gap fill covers the rest.
        this.inbox.length = 0;
        this.resetTo(read.epoch || renewed, read.headSeq);
        return;
      } catch (err) {
        this.log.error({ err, topic: this.topic }, 'renewing the epoch failed; retrying');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async fillGap(untilSeq: number): Promise<void> {
    try {
      while (this.head + 1 < untilSeq) {
        const read = await this.store.readAfter(this.topic, this.head, Math.min(1000, untilSeq - this.head - 1));
        if (read.epoch !== this.epoch) return;
        const first = read.entries[0];
        // Entries of an older epoch (kept across a renewal) are not this epoch's: its numbering starts after them.
        if (!first || first.seq !== this.head + 1 || read.entries.some((entry) => entry.epoch !== this.epoch)) {
          // The history no longer holds the gap: members must re-sync.
          this.log.warn({ topic: this.topic, head: this.head, until: untilSeq }, 'gap not in history; forcing re-sync');
          this.resetTo(this.epoch, untilSeq - 1);
          return;
        }
        for (const entry of read.entries) this.accept(entry);
      }
    } catch (err) {
      this.log.error({ err, topic: this.topic }, 'gap fill failed; retrying');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private accept(entry: HistoryEntry): void {
    this.head = entry.seq;
    this.ring.push(entry);
    if (this.ring.length > this.ringSize + 256) this.ring.splice(0, this.ring.length - this.ringSize);
    for (const outlet of this.outlets) outlet.deliver(entry);
    if (this.waiters.length > 0) {
      const due = this.waiters.filter((w) => w.seq <= this.head);
      this.waiters = this.waiters.filter((w) => w.seq > this.head);
      for (const w of due) w.resolve();
    }
  }

  private resetTo(epoch: string, head = 0): void {
    this.epoch = epoch;
    this.head = head;
    this.startHead = head;
    this.ring.length = 0;
    for (const outlet of this.outlets) outlet.reset();
  }
}
