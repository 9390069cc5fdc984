import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { replayEnvelope, replayLine } from '../../src/gateway/envelope.js';
import { entryOfStored, storedEntryOf } from '../../src/store/stored-entry.js';
import type { HistoryEntry } from '../../src/store/topic-store.js';

/**
 * replayLine splices a payload's stored JSON text into the line instead of parsing and serialising it:
 * it must give exactly the bytes of JSON.stringify(replayEnvelope(entry)), the line live clients got,
 * for any payload the store can hold (it stores JSON.stringify(payload): src/store/redis/scripts.ts).
 */

const entry = (payload: JsonObject, fields: Partial<HistoryEntry> = {}): HistoryEntry => ({
  topic: 'prices.IN0020230085',
  epoch: 'a1b2c3d4e5f6',
  seq: 42,
  type: 'delta',
  ts: '2026-11-26T10:00:00.123Z',
  event_ts: '2026-11-26T10:00:00.100Z',
  event_id: 'evt-1',
  payload: { kind: 'l1', ...payload },
  hash: 'ab'.repeat(32),
  ...fields,
});

const expected = (e: HistoryEntry) => JSON.stringify(replayEnvelope(e));
/** What the replay writes: the entry as stored, through the splice. */
const spliced = (e: HistoryEntry) => replayLine(storedEntryOf(e));

describe('replayLine: the replay envelope, spliced', () => {
  it.each<[string, JsonObject, Partial<HistoryEntry>?]>([
    ['plain numbers', { bid: 99.125, ask: 99.6, bid_size: 5_000_000, bid_yield: null }],
    ['unicode, escapes, control characters', { note: 'Zürich — ₹ 100 😀 "quoted" back\\slash \n\t\r\b\f \u0000 \u001f \u2028 \u2029' }],
    ['lone surrogates (serialised as escapes)', { s: '\ud800 \udfff x\ud83d' }],
    ['integer-like keys (serialised first) and odd keys', { b: 1, '10': 2, '2': 3, '': 4, 'k"ey': 5, 'ü': 6 }],
    ['number edge cases', { z: -0, big: 1e21, small: 5e-324, max: Number.MAX_SAFE_INTEGER, neg: -1.5e-7 }],
    ['nested objects and arrays', { levels: [{ px: 99.1, qty: [1, 2, { d: [] }] }], o: { a: { b: { c: {} } } }, t: true, f: false }],
    ['kind only', {}],
    ['an alert, and strings needing escapes in every field', { kind: 'breach' }, { type: 'alert', event_id: 'id "with" \\ and ☃ \u2028', epoch: 'e"p', ts: 't\n', event_ts: '😀', hash: '' }],
    ['a topic with a user name', {}, { topic: 'trading.ämélie' }],
  ])('%s', (_name, payload, fields) => {
    const e = entry(payload, fields);
    expect(spliced(e)).toBe(expected(e));
    // And the parse of what is stored gives the same line (what the slow path served).
    expect(spliced(e)).toBe(expected(entryOfStored(storedEntryOf(e))));
  });

  it('any JSON payload, any strings in the entry fields', () => {
    const text = fc.string({ unit: 'binary' });
    fc.assert(
      fc.property(
        fc.dictionary(text, fc.jsonValue()),
        fc.record({ kind: text, event_id: text, epoch: text, ts: text, event_ts: text, hash: text, topic: text, seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), type: fc.constantFrom('delta' as const, 'alert' as const) }),
        (payload, { kind, ...fields }) => {
          const e = { ...entry(payload as JsonObject, fields), payload: { ...(payload as JsonObject), kind } };
          expect(spliced(e)).toBe(expected(e));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
