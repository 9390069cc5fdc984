import type { DomainEvent } from '../domain/events.js';
import { isValidIsin } from '../domain/isin.js';
import { compileSchemaDir, describeErrors } from '../domain/json-schema.js';
import { MAX_JSON_DEPTH, nestingExceeds } from '../domain/json.js';

/** Upstream event validation: JSON Schema (schemas/events) plus the ISIN check digit, which a schema cannot express. */

export type EventValidation = { ok: true; event: DomainEvent } | { ok: false; reason: string };

const { event: validate } = compileSchemaDir(new URL('../../schemas/events/', import.meta.url), {
  event: 'https://bondx.example/schemas/events/event.json',
});

export function validateEvent(raw: unknown): EventValidation {
  // Transports hand over text they could not parse as JSON (e.g. a Kafka value), to be dead-lettered.
  if (typeof raw === 'string') return { ok: false, reason: 'not JSON: the message is not a parseable JSON object' };
  // Before the schema: no event needs this much nesting, and deeper values break whatever recurses over them.
  if (nestingExceeds(raw, MAX_JSON_DEPTH)) return { ok: false, reason: `nesting deeper than ${MAX_JSON_DEPTH} levels` };
  if (!validate(raw)) return { ok: false, reason: describeErrors(validate.errors) };
  // The schema guarantees the shape of DomainEvent (event.json mirrors src/domain/events.ts).
  const event = raw as DomainEvent;
  if ('isin' in event && !isValidIsin(event.isin)) return { ok: false, reason: '/isin: invalid ISIN check digit' };
  return { ok: true, event };
}
