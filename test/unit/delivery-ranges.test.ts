import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/observability/logger.js';
import { DeliveryTrack, endOfClose } from '../../src/gateway/delivery-ranges.js';
import { DeliveryRecorder } from '../../src/gateway/delivery-recorder.js';
import { latestRanges, MemoryDeliveryLog, queryDeliveries, type DeliveryRecord } from '../../src/store/deliveries.js';

const TARGET = { gateway: 'gw-1', conn: 'c-1', user: 'alice', transport: 'socketio', stream: 'market', device_type: 'web' };
const TOPIC = 'prices.IN0020230085';
const t = (s: number) => new Date(Date.UTC(2026, 11, 2, 9, 0, s)).toISOString();

/** The range fields a test compares (who and which topic are TARGET and TOPIC throughout). */
const ranges = (records: DeliveryRecord[]) => records.map((r) => ({ kind: r.kind, epoch: r.epoch, from: r.from_seq, to: r.to_seq, end: r.end }));

/** A room's broadcast cursor, moved by the test. */
const room = (lastSeq = 0, epoch = 'e1') => ({ lastSeq, epoch });

describe('delivery ranges (pure bookkeeping)', () => {
  it('a snapshot is one seq, complete at once; live extends contiguously and reads the room only when taken', () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    const cursor = room(10);
    track.sent('snapshot', 'e1', 10, 10, t(0));
    track.sent('live', 'e1', 11, 12, t(0)); // the ring's entries after the snapshot
    track.follow(cursor, 'e1', 12, t(0));
    cursor.lastSeq = 20;
    expect(ranges(track.take(t(2)))).toEqual([
      { kind: 'snapshot', epoch: 'e1', from: 10, to: 10, end: 'done' },
      { kind: 'live', epoch: 'e1', from: 11, to: 20, end: null },
    ]);
    // Nothing new since: nothing to write again.
    expect(track.take(t(4))).toEqual([]);
    cursor.lastSeq = 25;
    track.end('unsubscribe', t(5));
    const [closed] = track.take(t(6));
    expect(closed).toMatchObject({ ...TARGET, topic: TOPIC, kind: 'live', from_seq: 11, to_seq: 25, end: 'unsubscribe', ts: t(0), last_ts: t(5) });
    expect(track.finished).toBe(true);
  });

  it('pause closes the live range where the room was; the resume is a conflated snapshot, then live again', () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    const first = room(0);
    track.sent('snapshot', 'e1', 0, 0, t(0));
    track.follow(first, 'e1', 0, t(0));
    first.lastSeq = 30;
    track.close('pause', t(1));
    track.sent('conflated', 'e1', 40, 40, t(3));
    const second = room(40);
    track.follow(second, 'e1', 40, t(3));
    second.lastSeq = 44;
    expect(ranges(track.take(t(4)))).toEqual([
      { kind: 'snapshot', epoch: 'e1', from: 0, to: 0, end: 'done' },
      { kind: 'live', epoch: 'e1', from: 1, to: 30, end: 'pause' },
      { kind: 'conflated', epoch: 'e1', from: 40, to: 40, end: 'done' },
      { kind: 'live', epoch: 'e1', from: 41, to: 44, end: null },
    ]);
  });

  it("a resume's catch-up pages are one range, done when live takes over", () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    track.sent('resume', 'e1', 51, 60, t(0));
    track.sent('resume', 'e1', 61, 70, t(0));
    track.follow(room(65), 'e1', 70, t(0));
    track.end('disconnect', t(1));
    expect(ranges(track.take(t(1)))).toEqual([{ kind: 'resume', epoch: 'e1', from: 51, to: 70, end: 'done' }]);
  });

  it('a resync ends the old epoch\'s range with "resync"; the new subscription starts from a resync snapshot', () => {
    const old = new DeliveryTrack(TARGET, TOPIC);
    old.sent('snapshot', 'e1', 5, 5, t(0));
    old.follow(room(9), 'e1', 5, t(0));
    old.end('resync', t(1));
    const fresh = new DeliveryTrack(TARGET, TOPIC);
    fresh.sent('resync', 'e2', 3, 3, t(1));
    expect(ranges([...old.take(t(2)), ...fresh.take(t(2))])).toEqual([
      { kind: 'snapshot', epoch: 'e1', from: 5, to: 5, end: 'done' },
      { kind: 'live', epoch: 'e1', from: 6, to: 9, end: 'resync' },
      { kind: 'resync', epoch: 'e2', from: 3, to: 3, end: 'done' },
    ]);
  });

  it('a connection closed as a slow consumer, or by a shutdown, says so; any other close is a disconnect', () => {
    expect(endOfClose('slow_consumer')).toBe('slow_consumer');
    expect(endOfClose('server_shutting_down')).toBe('shutdown');
    expect(endOfClose('server shutdown')).toBe('shutdown');
    expect(endOfClose('transport close')).toBe('disconnect');
    expect(endOfClose('token_expired')).toBe('disconnect');
    const track = new DeliveryTrack(TARGET, TOPIC);
    track.sent('snapshot', 'e1', 1, 1, t(0));
    track.follow(room(7), 'e1', 1, t(0));
    track.end(endOfClose('slow_consumer'), t(1));
    expect(ranges(track.take(t(1))).at(-1)).toEqual({ kind: 'live', epoch: 'e1', from: 2, to: 7, end: 'slow_consumer' });
  });

  it('a gap closes the range and opens another; a live range that delivered nothing records nothing', () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    for (const seq of [1, 2, 5]) track.sent('replay', 'e1', seq, seq, t(seq));
    track.end('done', t(6));
    expect(ranges(track.take(t(6)))).toEqual([
      { kind: 'replay', epoch: 'e1', from: 1, to: 2, end: 'gap' },
      { kind: 'replay', epoch: 'e1', from: 5, to: 5, end: 'done' },
    ]);
    const idle = new DeliveryTrack(TARGET, TOPIC);
    idle.follow(room(3), 'e1', 3, t(0));
    expect(idle.take(t(1))).toEqual([]);
    idle.end('unsubscribe', t(2));
    expect(idle.take(t(2))).toEqual([]);
  });

  it('a topic subscribed before its first entry: the live range is in the epoch its entries come in', () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    const cursor = room(0, '');
    track.sent('snapshot', '', 0, 0, t(0));
    track.follow(cursor, '', 0, t(0));
    expect(track.take(t(1)).map((r) => r.kind)).toEqual(['snapshot']);
    Object.assign(cursor, { lastSeq: 4, epoch: 'e7' });
    track.end('unsubscribe', t(2));
    expect(ranges(track.take(t(2)))).toEqual([{ kind: 'live', epoch: 'e7', from: 1, to: 4, end: 'unsubscribe' }]);
  });

  it('a track is forgotten only once ended and taken, not while it waits for its first delivery', () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    expect(track.finished).toBe(false);
    track.sent('snapshot', 'e1', 1, 1, t(0));
    track.end('unsubscribe', t(1));
    expect(track.finished).toBe(false);
    track.take(t(1));
    expect(track.finished).toBe(true);
  });

  it("reading keeps each range's latest write: the closed one over the open ones", async () => {
    const track = new DeliveryTrack(TARGET, TOPIC);
    const cursor = room(0);
    track.sent('snapshot', 'e1', 0, 0, t(0));
    track.follow(cursor, 'e1', 0, t(0));
    const log = new MemoryDeliveryLog(100);
    for (const [seq, s] of [[10, 2], [20, 4]] as const) {
      cursor.lastSeq = seq;
      await log.append(track.take(t(s)));
    }
    track.end('disconnect', t(5));
    await log.append(track.take(t(5)));
    expect((await log.read('alice')).length).toBe(4);
    expect(ranges(latestRanges(await log.read('alice')))).toEqual([
      { kind: 'snapshot', epoch: 'e1', from: 0, to: 0, end: 'done' },
      { kind: 'live', epoch: 'e1', from: 1, to: 20, end: 'disconnect' },
    ]);
    expect(await queryDeliveries(log, { user: 'alice', since: t(6) })).toEqual([]);
    expect(await queryDeliveries(log, { user: 'alice', topic: 'prices.other' })).toEqual([]);
    expect((await queryDeliveries(log, { user: 'alice', until: t(1) })).length).toBe(2);
  });

  it('the recorder writes every track per flush, and keeps what a failed write did not store for the next', async () => {
    const stored: DeliveryRecord[] = [];
    let failing = true;
    const append = async (records: readonly DeliveryRecord[]) => {
      if (failing) throw new Error('down');
      stored.push(...records);
    };
    const recorder = new DeliveryRecorder({ append }, 'gw-1', 60_000, silentLogger);
    const track = recorder.track(TARGET, TOPIC);
    track.sent('snapshot', 'e1', 1, 1, t(0));
    await recorder.flush();
    expect(stored).toEqual([]);
    failing = false;
    track.end('unsubscribe', t(1));
    await recorder.close();
    expect(ranges(stored)).toEqual([{ kind: 'snapshot', epoch: 'e1', from: 1, to: 1, end: 'done' }]);
  });
});
