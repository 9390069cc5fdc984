/**
 * A server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, unmasked), header and UTF-8 payload in
 * one buffer: built once per room frame, so every member writes the same bytes (ws would encode and
 * frame the text again for each socket).
 */

const FIN_TEXT = 0x81;

export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN_TEXT;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, header, 'utf8');
  return frame;
}
