import type { DomainEvent } from '../domain/events.js';
import type { JsonObject } from '../domain/json.js';
import type { Logger } from '../observability/logger.js';
import type { CommitResult, SourcePosition, TopicStore } from '../store/topic-store.js';
import { project, topicsFor } from './project.js';

export type ApplyOutcome = CommitResult | { applied: false; reason: 'rejected'; detail: string };

/**
 * Folds events into topics through the pure reducers and commits the result to the store.
 * Applies are serialised: the projector is the single writer of its topics, which is what lets it
 * keep their states in memory instead of reading them back before every event.
 */
export class Projector {
  private readonly states = new Map<string, JsonObject>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: TopicStore,
    private readonly log: Logger,
  ) {}

  apply(event: DomainEvent, source?: SourcePosition): Promise<ApplyOutcome> {
    return this.serially(() => this.applyNow(event, source));
  }

  /** Marks a source position consumed without changing any topic (its event was dead-lettered). */
  async skip(source: SourcePosition): Promise<void> {
    await this.serially(() => this.store.commit({ eventId: `skip:${source.stream}@${source.offset}`, eventTs: new Date().toISOString(), source, changes: [] }));
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const run = this.tail.then(work);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Forget cached states (e.g. after a Kafka rebalance another projector may have written them). */
  invalidate(): void {
    this.states.clear();
  }

  private async applyNow(event: DomainEvent, source?: SourcePosition): Promise<ApplyOutcome> {
    const topics = topicsFor(event);
    const missing = topics.filter((t) => !this.states.has(t));
    if (missing.length > 0) for (const [topic, state] of await this.store.states(missing)) this.states.set(topic, state);
    const current = new Map<string, JsonObject>();
    for (const topic of topics) {
      const state = this.states.get(topic);
      if (state) current.set(topic, state);
    }
    const { changes, rejected } = project(event, current);
    if (rejected !== undefined) {
      this.log.warn({ event_id: event.event_id, type: event.type, reason: rejected }, 'event rejected by projector');
      return { applied: false, reason: 'rejected', detail: rejected };
    }
    const result = await this.store.commit({ eventId: event.event_id, eventTs: event.ts, ...(source ? { source } : {}), changes });
    if (result.applied) for (const change of changes) this.states.set(change.topic, change.state);
    return result;
  }
}
