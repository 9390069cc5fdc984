import type { JsonObject } from '../domain/json.js';
import type { TopicKind } from '../domain/topics.js';
import { ClientError } from '../protocol/errors.js';
import type { Envelope, Subtopics } from '../protocol/messages.js';
import type { HistoryEntry } from '../store/topic-store.js';
import { entryEnvelope } from './envelope.js';

/**
 * What part of a topic a subscriber wants, and in which form. Subscribers with the same filter share one
 * room, so a delta is still serialised once per room. Only `prices.*` topics have subtopics (L1, L2,
 * trades); any topic can be asked for with `integrity` (each entry's `meta.hash`).
 */
export interface DeliveryFilter {
  /** Stable key; part of the room name. */
  key: string;
  accepts(entry: HistoryEntry): boolean;
  /** The part of a snapshot state this subscriber sees. */
  view(state: JsonObject): JsonObject;
  /** The envelope of an accepted entry, as this subscriber gets it. */
  envelope(entry: HistoryEntry): Envelope;
}

/** `integrity` is part of the key: those who did not ask share rooms whose envelopes have no hash. */
function withIntegrity(filter: Omit<DeliveryFilter, 'envelope'>, integrity: boolean): DeliveryFilter {
  return integrity ? { ...filter, key: `${filter.key}+hash`, envelope: (entry) => entryEnvelope(entry, true) } : { ...filter, envelope: (entry) => entryEnvelope(entry) };
}

const ALL = { key: 'all', accepts: () => true, view: (state: JsonObject) => state };

/** Payload kinds and snapshot fields behind each prices subtopic. */
const PRICE_PARTS = {
  L1: { kind: 'l1', fields: ['l1'] },
  L2: { kind: 'l2', fields: ['l2'] },
  trades: { kind: 'trade', fields: ['trades', 'last_trade'] },
} as const;
type PricePart = keyof typeof PRICE_PARTS;

export function deliveryFilter(kind: TopicKind, subtopics: Subtopics | undefined, integrity = false): DeliveryFilter {
  return withIntegrity(partsFilter(kind, subtopics), integrity);
}

function partsFilter(kind: TopicKind, subtopics: Subtopics | undefined): Omit<DeliveryFilter, 'envelope'> {
  if (kind !== 'prices' || subtopics === undefined) return ALL;
  const parts = new Set<PricePart>();
  const levels = (subtopics.levels ?? 'L1,L2').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  for (const level of levels) {
    if (level !== 'L1' && level !== 'L2') throw new ClientError('INVALID_MESSAGE', { reason: `unknown level ${level} (use L1, L2)` });
    parts.add(level);
  }
  if (subtopics.trades !== false) parts.add('trades');
  if (parts.size === 3) return ALL;
  const chosen = [...parts].sort();
  const kinds = new Set<string>(chosen.map((p) => PRICE_PARTS[p].kind));
  const hidden = (Object.keys(PRICE_PARTS) as PricePart[]).filter((p) => !parts.has(p)).flatMap((p) => PRICE_PARTS[p].fields);
  return {
    key: chosen.join('+'),
    accepts: (entry) => kinds.has(entry.payload.kind),
    view: (state) => Object.fromEntries(Object.entries(state).filter(([field]) => !(hidden as string[]).includes(field))),
  };
}
