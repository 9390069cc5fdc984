import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { DomainEvent } from '../domain/events.js';
import type { Applied, ApplyOutcome, Projector, SourcedEvent } from '../projector/projector.js';
import type { HistoryEntry, SourcePosition, TopicHead } from '../store/topic-store.js';
import { deadLetter, type DeadLetterStore } from './dead-letter.js';
import { validateEvent } from './validate.js';

export type IngestOutcome =
  | { status: 'applied'; event_id: string; entries: { topic: string; seq: number }[] }
  /** Applied (or dead-lettered) before: a redelivery, or a record re-read after a re-seek. `event_id` when the record has one. */
  | { status: 'duplicate'; event_id?: string }
  | { status: 'dead_lettered'; reason: string };

/** A head a record's commit left, with the topic's state then: what a replay checkpoint records. */
export interface CommittedHead extends TopicHead {
  topic: string;
}

/** A record's outcome in a run; for an applied one also the heads its commit left. */
export type RecordOutcome = IngestOutcome & { committed?: readonly CommittedHead[] };

/** A record as read from a source stream: its raw value and where it was read. */
export interface SourcedRecord {
  raw: unknown;
  position: SourcePosition;
}

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

  /**
   * Records of one source stream, in order (a Kafka batch of one partition): as `submit` one after the
   * other, except that consecutive valid events go to the projector together (Projector.applyRun: one
   * store round trip per stretch of one entity's events). One outcome per record up to the first that
   * failed (`failed`: what it threw; it and the records after it were not processed).
   */
  async submitRun(records: readonly SourcedRecord[], origin: string): Promise<{ outcomes: RecordOutcome[]; failed?: unknown }> {
    const validations = records.map((record) => validateEvent(record.raw));
    const outcomes: RecordOutcome[] = [];
    try {
      while (outcomes.length < records.length) {
        const started = performance.now();
        const from = outcomes.length;
        const events: SourcedEvent[] = [];
        for (let i = from; i < records.length; i++) {
          const validation = validations[i];
          if (!validation?.ok) break;
          events.push({ event: validation.event, source: (records[i] as SourcedRecord).position });
        }
        if (events.length === 0) {
          const invalid = records[from] as SourcedRecord;
          outcomes.push(await this.submit(invalid.raw, origin, invalid.position));
          continue;
        }
        const run = await this.projector.applyRun(events);
        const seconds = (performance.now() - started) / 1000 / Math.max(1, run.outcomes.length);
        for (const [i, applied] of run.outcomes.entries()) {
          const { raw, position } = records[from + i] as SourcedRecord;
          const outcome = await this.outcomeOf(raw, (events[i] as SourcedEvent).event, applied, origin, position);
          this.metrics.eventIngested(origin, outcome.status, outcome.status === 'dead_lettered' ? undefined : seconds);
          outcomes.push(applied.applied ? { ...outcome, committed: committedHeads(applied) } : outcome);
        }
        if (run.failed !== undefined) return { outcomes, failed: run.failed };
      }
    } catch (err) {
      return { outcomes, failed: err };
    }
    return { outcomes };
  }

  private async process(raw: unknown, origin: string, position: SourcePosition | undefined): Promise<IngestOutcome> {
    const validation = validateEvent(raw);
    if (!validation.ok) return this.reject(raw, validation.reason, sourceName(origin, position), position);
    return this.outcomeOf(raw, validation.event, await this.projector.apply(validation.event, position), origin, position);
  }

  /** What the projector's outcome means for the event: a rejected one is dead-lettered here. */
  private async outcomeOf(raw: unknown, event: DomainEvent, outcome: ApplyOutcome, origin: string, position: SourcePosition | undefined): Promise<IngestOutcome> {
    if (outcome.applied) return { status: 'applied', event_id: event.event_id, entries: outcome.entries.map(summary) };
    if (outcome.reason === 'rejected') return this.reject(raw, outcome.detail, sourceName(origin, position), position);
    return { status: 'duplicate', event_id: event.event_id };
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

/** The heads an applied event's commit left: each entry's chain head with its topic's state after it. */
function committedHeads(applied: Applied): CommittedHead[] {
  return applied.entries.map(({ topic, epoch, seq, ts, hash }, i) => ({ topic, epoch, seq, ts, hash, state: applied.states[i] ?? {} }));
}

/** Where a dead letter came from: the origin, and the source position when there is one. */
function sourceName(origin: string, position: SourcePosition | undefined): string {
  return position ? `${origin}:${position.stream}@${position.offset}` : origin;
}

function summary(entry: HistoryEntry): { topic: string; seq: number } {
  return { topic: entry.topic, seq: entry.seq };
}

function eventIdOf(raw: unknown): string | undefined {
  return raw && typeof raw === 'object' && 'event_id' in raw && typeof raw.event_id === 'string' ? raw.event_id : undefined;
}
