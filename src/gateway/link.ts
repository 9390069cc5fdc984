import type { Envelope } from '../protocol/messages.js';

/**
 * The seam between the gateway and a transport (as centrifuge separates its Transport from its Client):
 * a transport implements only this small link per client, and a Fanout per endpoint; everything a
 * connection does (parsing, limits, replies, subscriptions, heartbeats, expiry, closing) is the
 * gateway's (connection.ts), the same on every transport.
 */

/** One envelope on its way out, serialised at most once however many links write it. */
export class Frame {
  private json: string | undefined;
  private wire: Buffer | undefined;

  constructor(readonly envelope: Envelope) {}

  get text(): string {
    this.json ??= JSON.stringify(this.envelope);
    return this.json;
  }

  /**
   * The transport's encoding of the text (a whole WebSocket frame), built once for every link that
   * writes this frame: a room's members then share one buffer instead of encoding it per socket.
   * A frame belongs to one room, and a room to one transport, so one encoding is all it ever needs.
   */
  encoded(encode: (text: string) => Buffer): Buffer {
    this.wire ??= encode(this.text);
    return this.wire;
  }
}

export interface Link {
  /** Connection id, for logs. */
  readonly id: string;
  write(frame: Frame): void;
  /** Frames handed to the transport but not yet written to the network (the outbound queue). */
  buffered(): number;
  /** Ends the connection; `code` is the WebSocket close code (a transport without close codes ignores it). */
  close(code: number, reason: string): void;
  /** Transports that broadcast natively (Fanout.broadcast): after join, the room's broadcasts reach this client. */
  join?(roomName: string): void;
  leave?(roomName: string): void;
  /** Per-connection compression (`compression` of a subscribe), where the transport can switch it. */
  compress?(enabled: boolean): void;
}

/** How a transport reaches the members of one room. */
export interface Fanout {
  /** Names the transport in room names (`sio:/market`, `ws`): rooms are per transport. */
  readonly name: string;
  /**
   * A transport with rooms of its own (Socket.IO: one encoding for all sockets) broadcasts there, and
   * its links join and leave; without it, the room writes its one serialised Frame to each member's link.
   */
  broadcast?(roomName: string, envelope: Envelope): void;
}
