import { performance } from 'node:perf_hooks';
import type { DomainEvent } from '../domain/events.js';
import type { Logger } from '../observability/logger.js';
import { MarketGenerator, type EventSource } from './generator.js';

/**
 * The simulator's loop: takes batches from an event source (by default the G-sec market generator,
 * generator.ts) and publishes them into the ingest path (embedded mode and demos) at
 * `ratePerSecond` events per second in total, from a timer in small ticks (token bucket), strictly in
 * order and one at a time; a slow `publish` slows the simulator down instead of queueing events
 * without bound. Only timing and publishing live here: what is generated is the source's.
 */

export interface MarketSimulatorOptions {
  /** Where events go (the ingest path). Awaited: at most one publish is in flight at a time. */
  publish: (event: DomainEvent) => Promise<unknown>;
  /** Total events per second across all event types. */
  ratePerSecond: number;
  /** What is published; default a `MarketGenerator` for this rate. */
  source?: EventSource;
  logger?: Logger;
}

export interface SimulatorStats {
  /** Batches taken from the source. */
  steps: number;
  generated: number;
  published: number;
  failed: number;
}

const TICK_MS = 50;

export class MarketSimulator {
  private readonly publishFn: (event: DomainEvent) => Promise<unknown>;
  private readonly rate: number;
  private readonly source: EventSource;
  private readonly logger: Logger | undefined;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private budget = 0;
  private lastTickAt = 0;
  private readonly counters: SimulatorStats = { steps: 0, generated: 0, published: 0, failed: 0 };

  constructor(opts: MarketSimulatorOptions) {
    if (!(opts.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be > 0 (got ${opts.ratePerSecond})`);
    this.publishFn = opts.publish;
    this.rate = opts.ratePerSecond;
    this.source = opts.source ?? new MarketGenerator({ ratePerSecond: opts.ratePerSecond });
    this.logger = opts.logger;
  }

  stats(): SimulatorStats {
    return { ...this.counters };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastTickAt = performance.now();
    this.budget = 0;
    this.schedule();
    this.logger?.info({ rate: this.rate }, 'market simulator started');
  }

  async stop(): Promise<void> {
    if (!this.running) {
      await this.inFlight;
      return;
    }
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.inFlight;
    this.logger?.info(this.stats(), 'market simulator stopped');
  }

  /** Chain ticks with setTimeout (not setInterval) so they never overlap. */
  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.inFlight = this.tick().finally(() => {
        this.inFlight = null;
        this.schedule();
      });
    }, TICK_MS);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const t = performance.now();
    const elapsed = t - this.lastTickAt;
    this.lastTickAt = t;
    // Token bucket capped at a few ticks' worth: when publish is slow we fall behind and skip,
    // rather than bursting or queueing a backlog.
    const cap = Math.max(2, (this.rate * TICK_MS * 4) / 1000);
    this.budget = Math.min(this.budget + (this.rate * elapsed) / 1000, cap);
    while (this.running && this.budget >= 1) {
      const batch = this.source.next();
      this.counters.steps++;
      this.counters.generated += batch.length;
      // An empty batch still costs a token: a source with nothing to say must not spin the loop.
      this.budget -= Math.max(1, batch.length);
      for (const event of batch) {
        try {
          await this.publishFn(event);
          this.counters.published++;
        } catch (err) {
          this.counters.failed++;
          this.logger?.warn({ err, event_id: event.event_id, type: event.type }, 'simulator publish failed');
        }
      }
    }
  }
}
