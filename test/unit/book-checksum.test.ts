import fc from 'fast-check';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { bookChecksum, checksumInput, crc32, type BookLevel } from '../../src/domain/book-checksum.js';
import type { BookEvent } from '../../src/domain/events.js';
import type { JsonObject } from '../../src/domain/json.js';
import { applyLevels } from '../../src/domain/deltas/index.js';
import { reducePrices } from '../../src/projector/reducers/prices.js';

const lv = (price: number, size: number): BookLevel => ({ price, size });

describe('bookChecksum', () => {
  it('matches the README worked example (recomputed independently with Python zlib.crc32)', () => {
    const bids = [lv(100.1, 5_000_000), lv(100.05, 2_000_000)];
    const asks = [lv(100.2, 3_000_000)];
    expect(checksumInput(bids, asks)).toBe('100.1:5000000:100.2:3000000:100.05:2000000');
    expect(bookChecksum(bids, asks)).toBe(2717676144);
  });

  it('interleaves best first, lets the longer side run on, and stops at 10 levels per side', () => {
    const bids = Array.from({ length: 12 }, (_, i) => lv(100 - i / 100, i + 1));
    const asks = [lv(101, 7)];
    const input = checksumInput(bids, asks).split(':');
    expect(input.slice(0, 6)).toEqual(['100', '1', '101', '7', '99.99', '2']);
    expect(input).toHaveLength(2 * 10 + 2); // 10 bid levels + 1 ask level, two numbers each
    expect(checksumInput([], [])).toBe('');
    expect(bookChecksum([], [])).toBe(0);
  });

  it('computes the CRC-32 zlib does (it runs in browsers, without node:zlib)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(crc32(bytes)).toBe(zlibCrc32(bytes) >>> 0);
      }),
    );
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926); // the standard check value
  });

  it('is an unsigned 32-bit integer that changes with any level of the top 10', () => {
    const bids = [lv(99.5, 1), lv(99.4, 2)];
    const base = bookChecksum(bids, []);
    expect(Number.isInteger(base) && base >= 0 && base < 2 ** 32).toBe(true);
    expect(bookChecksum([lv(99.5, 1), lv(99.4, 3)], [])).not.toBe(base);
    expect(bookChecksum([lv(99.5, 1), lv(99.45, 2)], [])).not.toBe(base);
    // As specified, the string does not say which side a level is on once the other side has run out:
    // the price order the client's own book keeps makes up for it.
    expect(bookChecksum([lv(99.5, 1)], [lv(99.4, 2)])).toBe(base);
  });
});

describe('L2 checksum in the prices projection', () => {
  const ISIN = 'IN0020230085';
  const price = fc.integer({ min: 9900, max: 10100 }).map((p) => p / 100);
  const update = fc.record({ price, size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9_000_000 })) });
  const bookEvent = fc.record({ side: fc.constantFrom<'bid' | 'ask'>('bid', 'ask'), levels: fc.array(update, { minLength: 1, maxLength: 6 }) });

  it('a client applying each delta with the reducers’ own applyLevels holds a book whose checksum matches', () => {
    fc.assert(
      fc.property(fc.array(bookEvent, { minLength: 1, maxLength: 60 }), (events) => {
        let states = new Map<string, JsonObject>();
        const local = { bids: [] as BookLevel[], asks: [] as BookLevel[] };
        events.forEach((e, i) => {
          const event: BookEvent = { event_id: `b${i}`, type: 'book', ts: '2026-12-01T10:00:00.000Z', isin: ISIN, ...e };
          const [change] = reducePrices(event, states).changes;
          if (!change) throw new Error('book event rejected');
          states = new Map([[change.topic, change.state]]);
          const payload = change.payload as unknown as { side: 'bid' | 'ask'; levels: BookLevel[]; checksum: number };
          const key = payload.side === 'bid' ? 'bids' : 'asks';
          local[key] = applyLevels(local[key], payload.levels, payload.side);
          const snapshot = (change.state as unknown as { l2: { bids: BookLevel[]; asks: BookLevel[]; checksum: number } }).l2;
          expect(payload.checksum).toBe(bookChecksum(local.bids, local.asks));
          expect(snapshot.checksum).toBe(payload.checksum);
          expect(snapshot.checksum).toBe(bookChecksum(snapshot.bids, snapshot.asks));
        });
      }),
      { numRuns: 200 },
    );
  });
});
