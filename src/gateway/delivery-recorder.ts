import type { Logger } from '../observability/logger.js';
import type { DeliveryLog, DeliveryRecord, DeliveryTarget } from '../store/deliveries.js';
import { DeliveryTrack } from './delivery-ranges.js';

/** Records kept for the next flush while the log can not be written; beyond that the oldest are dropped (and logged). */
const MAX_UNWRITTEN = 100_000;

/**
 * The I/O side of the delivery record: every DeliveryTrack of this gateway, written to the log (Kafka,
 * Redis or memory) every `intervalMs` and on close. A crash loses at most the ranges of one interval:
 * an open range is written whenever it grew, so what was written is where it had got to.
 */
export class DeliveryRecorder {
  private readonly tracks = new Set<DeliveryTrack>();
  private unwritten: DeliveryRecord[] = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: Pick<DeliveryLog, 'append'>,
    /** This gateway's id (the `gateway` of its records). */
    readonly gateway: string,
    intervalMs: number,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.flush(), intervalMs);
    this.timer.unref();
  }

  /** A new track of deliveries of `topic` to `target`, written with the others from now on. */
  track(target: DeliveryTarget, topic: string): DeliveryTrack {
    const track = new DeliveryTrack(target, topic);
    this.tracks.add(track);
    return track;
  }

  /** Writes what every track has to write; one write at a time (a flush called meanwhile follows it). */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /** Stops the timer and writes what is left (after the connections ended, so every range is closed). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private async write(): Promise<void> {
    const now = new Date().toISOString();
    const records = this.unwritten;
    this.unwritten = [];
    for (const track of this.tracks) {
      for (const record of track.take(now)) records.push(record);
      if (track.finished) this.tracks.delete(track);
    }
    if (records.length === 0) return;
    try {
      await this.log.append(records);
    } catch (err) {
      const dropped = Math.max(0, records.length - MAX_UNWRITTEN);
      this.unwritten = records.slice(dropped);
      this.logger.warn({ err, unwritten: this.unwritten.length, dropped }, 'delivery record: write failed, retried at the next flush');
    }
  }
}
