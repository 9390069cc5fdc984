import type { DeliveryEnd, DeliveryKind, DeliveryRecord, DeliveryTarget } from '../store/deliveries.js';

/**
 * The range bookkeeping of the delivery record, pure (no clock, no I/O: test/unit/delivery-ranges.test.ts).
 * One DeliveryTrack per (connection, topic) subscription or live replay holds its open range and the
 * ranges it closed since they were last taken. Direct sends (snapshots, catch-up pages, replayed
 * entries) extend or open a range once per call; live delivery costs nothing per message: the open live
 * range reads the room's last broadcast seq (`SeqCursor`) only when it is taken or closed.
 */

/** How far live delivery has got: the last seq a room broadcast to its members (each member in it since the range opened got it), and its epoch. */
export interface SeqCursor {
  readonly lastSeq: number;
  readonly epoch: string;
}

interface OpenRange {
  kind: DeliveryKind;
  epoch: string;
  from: number;
  /** Last seq sent directly; a live range's cursor may be further. */
  to: number;
  ts: string;
  cursor: SeqCursor | undefined;
  /** The to_seq last taken (written), -1 before. */
  written: number;
}

const SNAPSHOT_KINDS: ReadonlySet<DeliveryKind> = new Set(['snapshot', 'resync', 'conflated']);

export class DeliveryTrack {
  private open: OpenRange | undefined;
  private closed: DeliveryRecord[] = [];
  /** Set by `end`: nothing more will be sent through this track. */
  private ended = false;

  constructor(
    readonly target: DeliveryTarget,
    readonly topic: string,
  ) {}

  /** Ended and everything taken: the track can be forgotten. */
  get finished(): boolean {
    return this.ended && this.closed.length === 0;
  }

  /**
   * Seqs `from`..`to` sent directly. A snapshot kind is the one seq `to` whose state was sent, complete at
   * once; other kinds extend the open range of the same kind and epoch when they continue it, else close
   * it (`gap` when only the seqs jump, `done` when another kind takes over) and open one.
   */
  sent(kind: DeliveryKind, epoch: string, from: number, to: number, now: string): void {
    const open = this.open;
    if (open && open.kind === kind && open.epoch === epoch && open.cursor === undefined && from === open.to + 1) {
      open.to = to;
      return;
    }
    if (open) this.close(open.kind === kind && open.epoch === epoch ? 'gap' : 'done', now);
    if (SNAPSHOT_KINDS.has(kind)) this.closed.push(this.record({ kind, epoch, from: to, to, ts: now, cursor: undefined, written: -1 }, to, now, 'done'));
    else this.open = { kind, epoch, from, to, ts: now, cursor: undefined, written: -1 };
  }

  /**
   * From now on the room delivers: seqs after `after` reach the client as `cursor` advances. Continues an
   * open live range of that epoch (catch-up entries after a snapshot), else opens one.
   */
  follow(cursor: SeqCursor, epoch: string, after: number, now: string): void {
    const open = this.open;
    if (!(open && open.kind === 'live' && open.epoch === epoch && open.cursor === undefined && open.to === after)) {
      if (open) this.close('done', now);
      this.open = { kind: 'live', epoch, from: after + 1, to: after, ts: now, cursor: undefined, written: -1 };
    }
    (this.open as OpenRange).cursor = cursor;
  }

  /** Closes the open range with `end` (nothing is recorded for a range that delivered nothing). */
  close(end: DeliveryEnd, now: string): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    settle(open);
    const to = reach(open);
    if (to >= open.from) this.closed.push(this.record(open, to, now, end));
  }

  /** The subscription (or replay) is over: its open range closes with `end`. */
  end(end: DeliveryEnd, now: string): void {
    this.close(end, now);
    this.ended = true;
  }

  /** The records to write now: every range closed since the last take, and the open one if it grew. */
  take(now: string): DeliveryRecord[] {
    const out = this.closed;
    this.closed = [];
    const open = this.open;
    if (open) {
      settle(open);
      const to = reach(open);
      if (to >= open.from && to > open.written) {
        open.written = to;
        out.push(this.record(open, to, now, null));
      }
    }
    return out;
  }

  private record(range: OpenRange, to: number, now: string, end: DeliveryEnd | null): DeliveryRecord {
    const { gateway, conn, user, transport, stream, device_type } = this.target;
    // Written out, not spread: V8 builds a spread-then-extended object on its slow path, ~15x the cost,
    // and a flush builds one per growing range.
    return { ts: range.ts, last_ts: now, gateway, conn, user, transport, stream, device_type, topic: this.topic, epoch: range.epoch, kind: range.kind, from_seq: range.from, to_seq: to, end };
  }
}

/**
 * A live range opened on a topic with no entry yet has no epoch (''): its entries come in the epoch the
 * first commit gives the topic, the one the room broadcast them in. Fixed when the range is first written.
 */
function settle(range: OpenRange): void {
  if (range.epoch === '' && range.cursor) range.epoch = range.cursor.epoch;
}

/** The last seq a range has delivered: what was sent directly, or what its room broadcast since. */
function reach(range: OpenRange): number {
  return range.cursor ? Math.max(range.to, range.cursor.lastSeq) : range.to;
}

/** The end of every range of a connection that closed for `reason` (Connection.end's). */
export function endOfClose(reason: string): DeliveryEnd {
  if (reason === 'slow_consumer') return 'slow_consumer';
  if (reason === 'server_shutting_down' || reason === 'server shutdown') return 'shutdown';
  return 'disconnect';
}
