import { hrNow, LatencyHistogram, type EndStepArgs, type StepStats } from './shared.js';

/**
 * Client-side recording of one benchmark step, shared by the client children (socket.io in
 * `clients.ts`, plain WebSocket in `ws-clients.ts`): the receipt time of every delivered envelope of
 * the current step, keyed by the event number in its correlation id (`b<step>-<n>`), turned into
 * latency/delivery statistics once the parent hands over the publish times.
 */

export interface WireEnvelope {
  type?: string;
  topic?: string | null;
  seq?: number | null;
  correlation_id?: string | null;
  payload?: unknown;
  meta?: Record<string, unknown>;
}

export class StepRecorder {
  private prefix = '';
  // Parallel growable arrays: event n and receipt time of each recorded envelope.
  private recN = new Int32Array(1 << 18);
  private recT = new Float64Array(1 << 18);
  private len = 0;
  private batchFrames = 0;
  private deltaFrames = 0;
  private cpuAtStart = process.cpuUsage();
  private startedAt = hrNow();

  begin(step: number): void {
    this.prefix = `b${step}-`;
    this.len = 0;
    this.batchFrames = 0;
    this.deltaFrames = 0;
    this.cpuAtStart = process.cpuUsage();
    this.startedAt = hrNow();
  }

  /** Envelopes of the current step received so far (warm-up included). */
  get received(): number {
    return this.len;
  }

  /** A `delta` frame. */
  delta(env: WireEnvelope, t = hrNow()): void {
    this.deltaFrames++;
    this.record(env, t);
  }

  /** A `batch` frame: `{type:'batch', payload: Envelope[]}`; each inner envelope counts. */
  batch(env: WireEnvelope, t = hrNow()): void {
    this.batchFrames++;
    if (Array.isArray(env.payload)) for (const inner of env.payload as WireEnvelope[]) this.record(inner, t);
  }

  private record(env: WireEnvelope, t: number): void {
    const id = env.correlation_id;
    if (typeof id !== 'string' || this.prefix === '' || !id.startsWith(this.prefix)) return;
    const n = Number(id.slice(this.prefix.length));
    if (!Number.isInteger(n)) return;
    if (this.len === this.recN.length) {
      const nN = new Int32Array(this.recN.length * 2);
      nN.set(this.recN);
      this.recN = nN;
      const nT = new Float64Array(this.recT.length * 2);
      nT.set(this.recT);
      this.recT = nT;
    }
    this.recN[this.len] = n;
    this.recT[this.len] = t;
    this.len++;
  }

  /** Statistics for `clients` recording connections; recording goes on until the next begin(). */
  end(args: EndStepArgs, clients: number): StepStats {
    const cpu = process.cpuUsage(this.cpuAtStart);
    const elapsedMs = hrNow() - this.startedAt;
    const { publishTimes, windowFrom, windowTo, clockShift } = args;
    // Receipt times are on this process's clock; the window bounds and publish times on the server's.
    const windowStart = args.windowStart + clockShift;
    const windowEnd = args.windowEnd + clockShift;
    const span = Math.max(0, windowTo - windowFrom);
    const perEvent = new Uint32Array(span);
    const histogram = new LatencyHistogram();
    let delivered = 0;
    let inWindowMsgs = 0;
    for (let i = 0; i < this.len; i++) {
      const n = this.recN[i] as number;
      const t = this.recT[i] as number;
      if (t >= windowStart && t < windowEnd) inWindowMsgs++;
      if (n < windowFrom || n >= windowTo) continue;
      const sent = publishTimes[n];
      if (sent === undefined) continue;
      perEvent[n - windowFrom] = (perEvent[n - windowFrom] ?? 0) + 1;
      histogram.add(t - clockShift - sent);
      delivered++;
    }
    // Duplicates per (client, event) are not visible in the aggregate: count receipts per event instead.
    let duplicates = 0;
    for (const c of perEvent) if (c > clients) duplicates += c - clients;
    return {
      received: this.len,
      clients,
      expected: span * clients,
      delivered,
      inWindowMsgs,
      windowSec: (windowEnd - windowStart) / 1000,
      latency: histogram.toJson(),
      batchFrames: this.batchFrames,
      deltaFrames: this.deltaFrames,
      duplicates,
      cpuMs: (cpu.user + cpu.system) / 1000,
      elapsedMs,
    };
  }
}
