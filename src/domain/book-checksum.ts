/**
 * The order-book checksum every L2 snapshot and delta of `prices.{isin}` carries, so a client that keeps
 * a local book can prove it matches the venue's after each update (and re-sync when it does not).
 *
 * checksum = CRC-32 (IEEE 802.3, unsigned 32-bit) of the UTF-8 string made from the top
 * {@link CHECKSUM_LEVELS} levels of each side, interleaved best first:
 *   bid1.price:bid1.size:ask1.price:ask1.size:bid2.price:…
 * When one side has fewer levels, the other side's remaining levels follow in order. Numbers are written
 * as JSON writes them (`String(100.1)` = `100.1`, `String(5000000)` = `5000000`). Worked example in the
 * README ("Order-book checksum"); test/unit/book-checksum.test.ts recomputes it.
 *
 * Pure and dependency-free (no node:zlib), so servers, the client SDK in browsers and Node, and the dashboard
 * share it; test/unit/book-checksum.test.ts checks it against node:zlib's crc32.
 */

export const CHECKSUM_LEVELS = 10;

export interface BookLevel {
  price: number;
  size: number;
}

/** The string the checksum is taken over (exposed for documentation and debugging). */
export function checksumInput(bids: readonly BookLevel[], asks: readonly BookLevel[]): string {
  const parts: string[] = [];
  for (let i = 0; i < CHECKSUM_LEVELS; i++) {
    const bid = bids[i];
    const ask = asks[i];
    if (bid) parts.push(String(bid.price), String(bid.size));
    if (ask) parts.push(String(ask.price), String(ask.size));
    if (!bid && !ask) break;
  }
  return parts.join(':');
}

/** CRC-32 of {@link checksumInput}, as an unsigned 32-bit integer. */
export function bookChecksum(bids: readonly BookLevel[], asks: readonly BookLevel[]): number {
  return crc32(new TextEncoder().encode(checksumInput(bids, asks)));
}

/** CRC-32 lookup table for the reflected IEEE polynomial 0xEDB88320, built once. */
const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (IEEE 802.3, as zlib) of `bytes`, unsigned. */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
