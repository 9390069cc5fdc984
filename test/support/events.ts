import type { BookEvent, BookLevel, QuoteEvent } from '../../src/domain/events.js';

/**
 * Upstream events for tests and benchmarks. Each is a valid event (schemas/events) with a fresh
 * event_id unless one is given; the intersection with Record keeps them usable where a test treats an
 * event as plain JSON.
 */

type Json<E> = E & Record<string, unknown>;

let counter = 0;
/** `<prefix>-<pid>-<n>`: unique across the test files and processes sharing one store. */
export function eventId(prefix: string): string {
  return `${prefix}-${process.pid}-${++counter}`;
}

export function quote(isin: string, bid = 99.5, ask = 99.6, id = eventId('q')): Json<QuoteEvent> {
  return { event_id: id, type: 'quote', ts: new Date().toISOString(), isin, bid, ask, bid_size: 5_000_000, ask_size: 5_000_000 };
}

export function book(isin: string, side: BookEvent['side'], levels: BookLevel[], id = eventId('b')): Json<BookEvent> {
  return { event_id: id, type: 'book', ts: new Date().toISOString(), isin, side, levels };
}

/** `depth` levels of one side, best first, `tick` apart from 99.5 (bid) or 99.6 (ask); sizes vary with `n`. */
export function ladder(side: BookEvent['side'], depth: number, n: number, tick = 0.01): BookLevel[] {
  const best = side === 'bid' ? 99.5 : 99.6;
  const away = side === 'bid' ? -1 : 1;
  return Array.from({ length: depth }, (_, i) => ({ price: Math.round((best + away * i * tick) * 1000) / 1000, size: 1_000_000 * (1 + ((n + i) % 7)) }));
}
