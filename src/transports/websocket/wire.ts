/**
 * The plain-WebSocket write path's two savings over one `ws.send` per message and socket:
 * - `textFrame`: a server-to-client text frame (RFC 6455 §5.2: FIN, opcode 1, unmasked) built once,
 *   header and UTF-8 payload in one buffer, so every member of a room writes the same bytes;
 * - `TurnCork`: a socket written in this event-loop turn is corked until the turn ends, so all the
 *   frames it got in the turn leave in one writev (one syscall) instead of one write each.
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

interface Corkable {
  cork(): void;
  uncork(): void;
}

/**
 * Corks sockets for the rest of the current event-loop turn: uncorked together in the turn's check
 * phase (setImmediate), right after the I/O callbacks that wrote to them, so nothing waits on a timer.
 */
export class TurnCork {
  private readonly corked = new Set<Corkable>();

  /** Corks `socket` until the end of this turn (once, however often it is written). */
  hold(socket: Corkable): void {
    if (this.corked.has(socket)) return;
    if (this.corked.size === 0) setImmediate(this.release);
    this.corked.add(socket);
    socket.cork();
  }

  private readonly release = (): void => {
    for (const socket of this.corked) socket.uncork();
    this.corked.clear();
  };
}
