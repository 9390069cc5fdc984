import { setTimeout as sleep } from 'node:timers/promises';
import type { JsonObject } from '../domain/json.js';
import type { Envelope, ReplayMessage } from '../protocol/messages.js';
import type { MissingPart } from '../replay/range.js';
import type { ReplayAck } from '../protocol/socketio-events.js';
import { planReplay, replayEnd, replayPages, type HistoryReader } from '../replay/replay.js';
import { parseReplayRequest } from '../replay/request.js';
import type { HistoryEntry } from '../store/topic-store.js';
import type { DeliveryTrack } from './delivery-ranges.js';
import { replayEnvelope } from './envelope.js';
import type { Link } from './link.js';

/** How often a replay held back by a full outbound queue looks again. */
const DRAIN_POLL_MS = 5;
/** Entries per history read: a paced replay sends few at a time, and must not hold a big page. */
const LIVE_PAGE_SIZE = 200;

/** What a live replay writes to: its connection. */
export interface ReplayTarget {
  readonly isClosed: boolean;
  send(envelope: Envelope): void;
  readonly link: Pick<Link, 'buffered'>;
}

/**
 * A `replay` message of a live connection: the topic's held history (the HTTP replay's plan and pages),
 * each entry as its replay line with `meta.replay: true`, at the recorded pace (commit-time gaps / speed;
 * speed 0: no delay). Before each envelope it waits while the connection's outbound queue is over
 * `maxBuffered`, so a replay never makes its client a slow consumer; live subscriptions are untouched.
 */
export class LiveReplay {
  private readonly abort = new AbortController();

  constructor(
    private readonly reader: HistoryReader,
    private readonly request: ReplayMessage,
    private readonly target: ReplayTarget,
    private readonly maxBuffered: number,
    /** Where the replayed ranges are recorded (absent: the delivery record is off). */
    private readonly track?: DeliveryTrack,
  ) {}

  /** Cancels the replay (its ack says `cancelled`); false when it had already ended. */
  stop(): boolean {
    if (this.abort.signal.aborted) return false;
    this.abort.abort();
    return true;
  }

  async run(): Promise<ReplayAck> {
    const { topic, from_seq: fromSeq, to_seq: toSeq, since, until, speed = 1 } = this.request;
    // The HTTP replay's parser, so both accept and refuse the same ranges (by seq or by time, not both).
    const asked = parseReplayRequest({ topic, from_seq: fromSeq?.toString(), to_seq: toSeq?.toString(), since, until });
    const plan = await planReplay(this.reader, { ...asked, source: 'redis' });
    const missing: MissingPart[] = plan.missing.map((m) => ({ ...m }));
    const served = { from: null as number | null, to: null as number | null, count: 0 };
    let previous: HistoryEntry | undefined;
    try {
      for await (const entries of replayPages(this.reader, plan, missing, LIVE_PAGE_SIZE)) {
        for (const entry of entries) {
          await this.pace(previous, entry, speed);
          if (this.over) break;
          const envelope = replayEnvelope(entry);
          this.target.send({ ...envelope, meta: { ...envelope.meta, replay: true } as JsonObject });
          this.track?.sent('replay', entry.epoch, entry.seq, entry.seq, new Date().toISOString());
          served.from ??= entry.seq;
          served.to = entry.seq;
          served.count++;
          previous = entry;
        }
        if (this.over) break;
      }
    } catch (err) {
      // A cancelled wait rejects with an AbortError: the replay just ends there.
      if (!this.abort.signal.aborted) throw err;
    } finally {
      this.track?.end(this.target.isClosed ? 'disconnect' : 'done', new Date().toISOString());
    }
    const cancelled = this.abort.signal.aborted;
    this.abort.abort();
    const { type: _type, ...end } = replayEnd(plan, served, missing);
    return { action: 'replay', cancelled, ...end };
  }

  private get over(): boolean {
    return this.abort.signal.aborted || this.target.isClosed;
  }

  /** Waits the entry's recorded gap / speed, then while the outbound queue is over its bound. */
  private async pace(previous: HistoryEntry | undefined, entry: HistoryEntry, speed: number): Promise<void> {
    const signal = this.abort.signal;
    if (previous && speed > 0) {
      const gap = (Date.parse(entry.ts) - Date.parse(previous.ts)) / speed;
      if (gap >= 1) await sleep(gap, undefined, { signal });
    }
    while (!this.over && this.target.link.buffered() > this.maxBuffered) await sleep(DRAIN_POLL_MS, undefined, { signal });
  }
}
