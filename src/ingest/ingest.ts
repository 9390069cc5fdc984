import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { ApplyOutcome, Projector } from '../projector/projector.js';
import type { HistoryEntry, SourcePosition } from '../store/topic-store.js';
import { deadLetter, type DeadLetterStore } from './dead-letter.js';
import { validateEvent } from './validate.js';

export type IngestOutcome =
  | { status: 'applied'; event_id: string; entries: { topic: string; seq: number }[] }
  /** Applied (or dead-lettered) before: a redelivery, or a record re-read after a re-seek. `event_id` when the record has one. */
  | { status: 'duplicate'; event_id?: string }
  | { status: 'dead_lettered'; reason: string };

/**
 * The single way events enter the system (HTTP, simulator, Kafka): validate against the schemas,
 * project, commit; anything invalid or inapplicable is dead-lettered with its reason.
 */
export class Ingest {
  constructor(
    private readonly projector: Projector,
    private readonly deadLetters: DeadLetterStore,
    private readonly log: Logger,
    private readonly metrics: Metrics,
  ) {}

  /** `origin` names where the event came from (`http`, `simulator`, `kafka`), for dead letters and logs. */
  async submit(raw: unknown, origin: string, position?: SourcePosition): Promise<IngestOutcome> {
    const started = performance.now();
    const outcome = await this.process(raw, origin, position);
    // Apply time covers validate + project + commit; dead letters are counted, not timed.
    this.metrics.eventIngested(origin, outcome.status, outcome.status === 'dead_lettered' ? undefined : (performance.now() - started) / 1000);
    return outcome;
  }

  private async process(raw: unknown, origin: string, position: SourcePosition | undefined): Promise<IngestOutcome> {
    const validation = validateEvent(raw);
    const source = position ? `${origin}:${position.stream}@${position.offset}` : origin;
    if (!validation.ok) return this.reject(raw, validation.reason, source, position);
    const outcome: ApplyOutcome = await this.projector.apply(validation.event, position);
    if (outcome.applied) return { status: 'applied', event_id: validation.event.event_id, entries: outcome.entries.map(summary) };
    if (outcome.reason === 'rejected') return this.reject(raw, outcome.detail, source, position);
    return { status: 'duplicate', event_id: validation.event.event_id };
  }

  /** Keeps the event as a dead letter with its reason. */
  private async reject(raw: unknown, reason: string, source: string, position: SourcePosition | undefined): Promise<IngestOutcome> {
    const eventId = eventIdOf(raw);
    // Re-read after a re-seek, and already skipped: its letter is kept from the first time.
    if (position && (await this.projector.consumed(position))) return { status: 'duplicate', ...(eventId !== undefined ? { event_id: eventId } : {}) };
    await this.deadLetters.add(deadLetter(raw, reason, source));
    // Consume the offset only after the letter is kept: a crash in between re-delivers, never loses.
    if (position) await this.projector.skip(position);
    this.log.warn({ reason, source, event_id: eventId }, 'event dead-lettered');
    return { status: 'dead_lettered', reason };
  }
}

function summary(entry: HistoryEntry): { topic: string; seq: number } {
  return { topic: entry.topic, seq: entry.seq };
}

function eventIdOf(raw: unknown): string | undefined {
  return raw && typeof raw === 'object' && 'event_id' in raw && typeof raw.event_id === 'string' ? raw.event_id : undefined;
}
