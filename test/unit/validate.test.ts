import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestingExceeds } from '../../src/domain/json.js';
import { deadLetter } from '../../src/ingest/dead-letter.js';
import { validateEvent } from '../../src/ingest/validate.js';

const ISIN = 'IN0020230085';
const base = { event_id: 'e-1', ts: '2024-05-01T10:00:00.123Z' };

const valid: Record<string, Record<string, unknown>> = {
  quote: { ...base, type: 'quote', isin: ISIN, bid: 100.1, ask: 100.2, bid_size: 5, ask_size: 0, bid_yield: 7.21, ask_yield: 7.2 },
  book: { ...base, type: 'book', isin: ISIN, side: 'bid', levels: [{ price: 100, size: 0 }] },
  trade: { ...base, type: 'trade', isin: ISIN, trade_id: 't1', price: 100, size: 5, yield: 7.2 },
  'auction.opened': { ...base, type: 'auction.opened', auction_id: 'A-1', isin: ISIN, notified_amount: 14000, bid_basis: 'price', closes_at: '2024-05-01T11:00:00+05:30' },
  'auction.bid': { ...base, type: 'auction.bid', auction_id: 'A-1', isin: ISIN, bid_id: 'b1', user_id: 'u1', yield: 7.18, amount: 100 },
  'auction.closed': { ...base, type: 'auction.closed', auction_id: 'A-1', isin: ISIN },
  'auction.allotted': { ...base, type: 'auction.allotted', auction_id: 'A-1', isin: ISIN, cutoff_yield: 7.19, cutoff_price: 99.5, allotted_amount: 1000 },
  'order.accepted': { ...base, type: 'order.accepted', user_id: 'u1', order_id: 'o1', isin: ISIN, side: 'buy', price: 100, quantity: 10 },
  'order.rejected': { ...base, type: 'order.rejected', user_id: 'u1', order_id: 'o1', isin: ISIN, side: 'sell', price: 100, quantity: 10, reason: 'band' },
  position: { ...base, type: 'position', user_id: 'u1', isin: ISIN, quantity: -10, avg_price: 99, mtm: -50 },
  'risk.metrics': { ...base, type: 'risk.metrics', user_id: 'u1', exposure: -1e6, dv01: 850, limit_utilisation: 0.4 },
  'risk.breach': { ...base, type: 'risk.breach', user_id: 'u1', limit: 'dv01', value: 1200, threshold: 1000, severity: 'warning' },
};

/** A valid event of `type` without `key`. */
const without = (type: string, key: string) => Object.fromEntries(Object.entries(valid[type] ?? {}).filter(([k]) => k !== key));

const reasonFor = (raw: unknown) => {
  const r = validateEvent(raw);
  return r.ok ? 'ok' : r.reason;
};

describe('validateEvent', () => {
  it.each(Object.entries(valid))('accepts a valid %s and returns it', (_type, raw) => {
    expect(validateEvent(raw)).toEqual({ ok: true, event: raw });
  });

  it('tolerates properties it does not know (upstream may add fields first)', () => {
    expect(validateEvent({ ...valid['quote'], venue: 'NDS-OM' }).ok).toBe(true);
  });

  it('accepts an auction bid by price', () => {
    expect(reasonFor({ ...without('auction.bid', 'yield'), price: 99.87 })).toBe('ok');
  });

  it.each<[string, unknown, string]>([
    ['unparsed text', 'quote', 'not JSON: the message is not a parseable JSON object'],
    ['non-object', 42, '/: must be object'],
    ['null', null, '/: must be object'],
    ['missing type', { ...base }, "/: must have required property 'type'"],
    ['non-string type', { ...base, type: 7 }, '/type: must be a string'],
    ['unknown type', { ...base, type: 'quote.v2' }, "/type: unknown type 'quote.v2'"],
    ['unknown order type', { ...valid['order.accepted'], type: 'order.amended' }, "/type: unknown type 'order.amended'"],
    ['empty event_id', { ...valid['quote'], event_id: '' }, '/event_id: must NOT have fewer than 1 characters'],
    ['ts not a date-time', { ...valid['quote'], ts: '2024-05-01' }, '/ts: must match format "date-time"'],
    ['ts without zone', { ...valid['quote'], ts: '2024-05-01T10:00:00' }, '/ts: must match format "date-time"'],
    ['string price', { ...valid['quote'], bid: '100.1' }, '/bid: must be number'],
    ['NaN price', { ...valid['quote'], ask: Number.NaN }, '/ask: must be number'],
    ['infinite size', { ...valid['quote'], bid_size: Number.POSITIVE_INFINITY }, '/bid_size: must be number'],
    ['zero price', { ...valid['trade'], price: 0 }, '/price: must be > 0'],
    ['negative size', { ...valid['trade'], size: -1 }, '/size: must be >= 0'],
    ['missing field', without('quote', 'ask'), "/: must have required property 'ask'"],
    ['lower-case ISIN', { ...valid['trade'], isin: 'in0020230085' }, '/isin: must match pattern "^[A-Z]{2}[A-Z0-9]{9}[0-9]$"'],
    ['bad ISIN check digit', { ...valid['trade'], isin: 'IN0020230086' }, '/isin: invalid ISIN check digit'],
    ['bad side', { ...valid['book'], side: 'buy' }, '/side: must be one of ["bid","ask"]'],
    ['book level with negative size', { ...valid['book'], levels: [{ price: 100, size: -5 }] }, '/levels/0/size: must be >= 0'],
    ['book with 51 levels', { ...valid['book'], levels: Array.from({ length: 51 }, () => ({ price: 100, size: 1 })) }, '/levels: must NOT have more than 50 items'],
    ['bid with neither yield nor price', without('auction.bid', 'yield'), "/: must have required property 'yield' or must have required property 'price'"],
    ['bid of zero amount', { ...valid['auction.bid'], amount: 0 }, '/amount: must be > 0'],
    ['auction id that cannot be a topic', { ...valid['auction.closed'], auction_id: 'a.b' }, '/auction_id: must match pattern "^[A-Za-z0-9_-]{1,64}$"'],
    ['user id that cannot be a topic', { ...valid['position'], user_id: 'u 1' }, '/user_id: must match pattern "^[A-Za-z0-9_-]{1,64}$"'],
    ['bad bid basis', { ...valid['auction.opened'], bid_basis: 'spread' }, '/bid_basis: must be one of ["yield","price"]'],
    ['bad order side', { ...valid['order.accepted'], side: 'bid' }, '/side: must be one of ["buy","sell"]'],
    ['bad severity', { ...valid['risk.breach'], severity: 'fatal' }, '/severity: must be one of ["info","warning","critical"]'],
    ['negative utilisation', { ...valid['risk.metrics'], limit_utilisation: -0.1 }, '/limit_utilisation: must be >= 0'],
    ['missing cutoff', without('auction.allotted', 'cutoff_price'), "/: must have required property 'cutoff_price'"],
  ])('rejects %s', (_name, raw, reason) => {
    expect(reasonFor(raw)).toBe(reason);
  });
});

describe('nesting bound (MAX_JSON_DEPTH)', () => {
  /** `depth` arrays nested, built from the inside without recursion. */
  const nested = (depth: number): unknown => {
    let value: unknown = [];
    for (let i = 1; i < depth; i++) value = [value];
    return value;
  };

  it('refuses more than 64 levels before the schema, at any depth without overflowing the stack', () => {
    expect(nestingExceeds(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(nestingExceeds(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    expect(reasonFor(nested(100_000))).toBe('nesting deeper than 64 levels');
    expect(reasonFor({ ...valid['quote'], extra: nested(MAX_JSON_DEPTH) })).toBe('nesting deeper than 64 levels');
  });

  it('a dead letter keeps the event up to the bound, the rest replaced by a marker, serialisable', () => {
    const letter = deadLetter({ event_id: 'e-deep', deep: nested(100_000) }, 'nesting deeper than 64 levels', 'http');
    const text = JSON.stringify(letter.event);
    expect(text).toContain('"event_id":"e-deep"');
    expect(text).toContain('[nested too deeply: removed]');
    expect(nestingExceeds(letter.event)).toBe(false);
    expect(deadLetter(valid['quote'], 'r', 'http').event).toEqual(valid['quote']);
  });
});
