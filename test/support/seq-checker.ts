import type { Socket } from 'socket.io-client';
import type { Envelope } from '../../src/protocol/messages.js';

/**
 * Follows a subscriber's view of topics and records every violation of the delivery guarantee:
 * after a snapshot at seq S, deltas must arrive as S+1, S+2, … with no gap and no duplicate.
 */
export class SeqChecker {
  readonly last = new Map<string, number>();
  readonly epochs = new Map<string, string>();
  readonly violations: string[] = [];
  received = 0;
  resyncs = 0;
  batches = 0;

  attach(socket: Socket): void {
    socket.on('snapshot', (env: Envelope) => this.onSnapshot(env));
    socket.on('delta', (env: Envelope) => this.onEntry(env));
    socket.on('alert', (env: Envelope) => this.onEntry(env));
    socket.on('batch', (env: Envelope) => {
      this.batches++;
      for (const inner of env.payload as unknown as Envelope[]) this.onEntry(inner);
    });
  }

  onSnapshot(env: Envelope): void {
    const topic = env.topic as string;
    if (env.meta.resync === true) this.resyncs++;
    else if (this.last.has(topic)) this.violations.push(`${topic}: unexpected plain snapshot at ${env.seq} after ${this.last.get(topic)}`);
    this.last.set(topic, env.seq as number);
    this.epochs.set(topic, String(env.meta.epoch));
  }

  onEntry(env: Envelope): void {
    const topic = env.topic as string;
    const expected = (this.last.get(topic) ?? Number.NaN) + 1;
    if (env.seq !== expected) this.violations.push(`${topic}: got seq ${env.seq}, expected ${expected}`);
    this.last.set(topic, Math.max(env.seq as number, this.last.get(topic) ?? 0));
    this.received++;
  }

  /** The subscribe message that resumes exactly where this client left off. */
  resumeRequest(topic: string): Record<string, unknown> {
    const last = this.last.get(topic);
    return last === undefined ? { topic } : { topic, resume_from_seq: last, epoch: this.epochs.get(topic) };
  }
}
