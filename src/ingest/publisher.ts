import type { DomainEvent } from '../domain/events.js';
import { deadLetter, type DeadLetterStore } from './dead-letter.js';
import type { Ingest, IngestOutcome } from './ingest.js';
import type { EventProducer } from './kafka/event-producer.js';
import { validateEvent } from './validate.js';

export type PublishOutcome = IngestOutcome | { status: 'queued'; event_id: string };

/**
 * How a process hands events to the system (HTTP POST, simulator): straight into its own projector
 * (embedded mode), or onto Kafka, where the projector consumes them.
 */
export interface Publisher {
  publish(events: unknown[], origin: string): Promise<PublishOutcome[]>;
}

export function directPublisher(ingest: Ingest): Publisher {
  return {
    async publish(events, origin) {
      const outcomes: PublishOutcome[] = [];
      for (const event of events) outcomes.push(await ingest.submit(event, origin));
      return outcomes;
    },
  };
}

/** Validates before producing, so a publisher learns at once that an event is bad (and it is still kept). */
export function kafkaPublisher(producer: EventProducer, deadLetters: DeadLetterStore): Publisher {
  return {
    async publish(events, origin) {
      const valid: DomainEvent[] = [];
      const outcomes: PublishOutcome[] = [];
      for (const raw of events) {
        const validation = validateEvent(raw);
        if (validation.ok) {
          valid.push(validation.event);
          outcomes.push({ status: 'queued', event_id: validation.event.event_id });
        } else {
          await deadLetters.add(deadLetter(raw, validation.reason, origin));
          outcomes.push({ status: 'dead_lettered', reason: validation.reason });
        }
      }
      if (valid.length > 0) await producer.send(valid);
      return outcomes;
    },
  };
}
