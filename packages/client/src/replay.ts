import type { ReplayMessage } from '../../../src/protocol/messages.js';
import type { AlertEnvelope, DeltaEnvelope, ReplayAck } from '../../../src/protocol/socketio-events.js';
import type { BondxError } from './errors.js';

export interface ReplayOptions {
  /** First seq (default 1). */
  fromSeq?: number;
  /** Last seq, inclusive (default: the head when the replay starts). */
  toSeq?: number;
  /** By commit time instead of seq (not both): from this instant, inclusive (ISO-8601 with a zone, or a Date). */
  since?: string | Date;
  /** Up to this instant, exclusive. */
  until?: string | Date;
  /** Recorded pace times this (default 1); 0: as fast as the client reads. */
  speed?: number;
}

/** A replayed entry: the envelope live clients got, with `meta.replay: true`. */
export type ReplayedEnvelope = DeltaEnvelope | AlertEnvelope;

/**
 * One `replay` of a topic's history (README "Audit and replay"): its entries as an async iterable, in seq
 * order, and `done`, the server's account of what was served and missing (or the error that refused it).
 * Replayed envelopes never reach the topic's Subscription: live state is not touched. The server plays one
 * replay per connection, so a later replay on the same stream cancels this one (`done` says `cancelled`).
 */
export class Replay implements AsyncIterable<ReplayedEnvelope> {
  /** Resolves when the replay ended (served, or cancelled); rejects with the server's error or a lost connection. */
  readonly done: Promise<ReplayAck>;
  private readonly queue: ReplayedEnvelope[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: BondxError | undefined;
  private settle!: { resolve: (ack: ReplayAck) => void; reject: (err: BondxError) => void };

  constructor(
    readonly topic: string,
    readonly message: ReplayMessage & { correlation_id: string },
    private readonly cancel: () => void,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Iterating alone is a way to use it: a failure then surfaces there, not as an unhandled rejection.
    this.done.catch(() => undefined);
  }

  get finished(): boolean {
    return this.ended;
  }

  /** Cancels the replay on the server (`done` then resolves with `cancelled: true`). */
  stop(): void {
    if (!this.ended) this.cancel();
  }

  // ---- for the client's connection ----

  push(envelope: ReplayedEnvelope): void {
    this.queue.push(envelope);
    this.notify();
  }

  end(ack: ReplayAck): void {
    this.ended = true;
    this.settle.resolve(ack);
    this.notify();
  }

  fail(error: BondxError): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    this.settle.reject(error);
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ReplayedEnvelope> {
    for (;;) {
      const next = this.queue.shift();
      if (next) {
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
