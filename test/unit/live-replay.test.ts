import { describe, expect, it } from 'vitest';
import { LiveReplay, type ReplayTarget } from '../../src/gateway/live-replay.js';
import type { Envelope } from '../../src/protocol/messages.js';
import type { HistoryReader } from '../../src/replay/replay.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';
import { sleep, waitFor } from '../support/waits.js';

/** LiveReplay's pacing against a fake history and connection: the outbound-queue wait, and cancellation. */

const TOPIC = 'prices.IN0020230085';
const T0 = Date.parse('2026-11-26T10:00:00Z');

/** Entries 1..n, committed `gapMs` apart. */
function history(n: number, gapMs: number): HistoryReader {
  const entries: HistoryEntry[] = Array.from({ length: n }, (_, i) => ({
    topic: TOPIC,
    epoch: 'e1',
    seq: i + 1,
    type: 'delta',
    ts: new Date(T0 + i * gapMs).toISOString(),
    event_ts: new Date(T0 + i * gapMs).toISOString(),
    event_id: `ev-${i + 1}`,
    payload: { kind: 'l1', bid: 99 },
    hash: 'ab'.repeat(32),
  }));
  return {
    readAfter: async (_topic, after, limit) => ({ epoch: 'e1', headSeq: n, firstSeq: 1, entries: entries.filter((e) => e.seq > after).slice(0, limit) }),
  };
}

function target(): ReplayTarget & { sent: Envelope[]; queued: number } {
  const t = { sent: [] as Envelope[], queued: 0, isClosed: false, send: (env: Envelope) => t.sent.push(env), link: { buffered: () => t.queued } };
  return t;
}

describe('LiveReplay', () => {
  it('at speed 0 sends nothing while the outbound queue is over its bound, then all of it', async () => {
    const conn = target();
    conn.queued = 100;
    const run = new LiveReplay(history(5, 1000), { type: 'replay', topic: TOPIC, speed: 0 }, conn, 10).run();
    await sleep(50);
    expect(conn.sent).toEqual([]);
    conn.queued = 0;
    expect(await run).toMatchObject({ action: 'replay', cancelled: false, count: 5, from_seq: 1, to_seq: 5 });
    expect(conn.sent.map((e) => [e.seq, e.meta['replay']])).toEqual([1, 2, 3, 4, 5].map((seq) => [seq, true]));
  });

  it('stop() ends a paced replay at once, its ack saying cancelled', async () => {
    const conn = target();
    const replay = new LiveReplay(history(5, 60_000), { type: 'replay', topic: TOPIC, speed: 1 }, conn, 10);
    const run = replay.run();
    await waitFor(() => conn.sent.length === 1, 1000, 'first entry');
    expect(replay.stop()).toBe(true);
    expect(await run).toMatchObject({ cancelled: true, count: 1, from_seq: 1, to_seq: 1 });
    expect(replay.stop()).toBe(false);
  });
});
