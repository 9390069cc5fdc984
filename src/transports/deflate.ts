import type { PerMessageDeflateOptions } from 'ws';

/**
 * permessage-deflate settings shared by both transports. zlib's defaults (32 KB window, memLevel 8,
 * 16 KB output chunks) suit large documents; our frames are ~340-byte JSON envelopes, so a 1 KB window,
 * memLevel 2 and 1 KB chunks cut the buffers held per compressed connection from ~16 KB to ~2 KB
 * while frames still shrink ~7.5x (340 -> 45 bytes; bench/compression.ts). Frames under the
 * threshold are not worth compressing.
 */
export const DEFLATE_OPTIONS: PerMessageDeflateOptions = {
  threshold: 256,
  serverMaxWindowBits: 10,
  zlibDeflateOptions: { memLevel: 2, chunkSize: 1024 },
};
