import type { JsonObject } from '../domain/json.js';
import type { TopicKind } from '../domain/topics.js';
import { ClientError } from '../protocol/errors.js';
import type { Subtopics } from '../protocol/messages.js';
import type { HistoryEntry } from '../store/topic-store.js';

/**
 * What part of a topic a subscriber wants. Subscribers with the same filter share one room, so a
 * delta is still serialised once per room. Only `prices.*` topics have subtopics (L1, L2, trades).
 */
export interface DeliveryFilter {
  /** Stable key; part of the room name. */
  key: string;
  accepts(entry: HistoryEntry): boolean;
  /** The part of a snapshot state this subscriber sees. */
  view(state: JsonObject): JsonObject;
}

const ALL: DeliveryFilter = { key: 'all', accepts: () => true, view: (state) => state };

/** Payload kinds and snapshot fields behind each prices subtopic. */
const PRICE_PARTS = {
  L1: { kind: 'l1', fields: ['l1'] },
  L2: { kind: 'l2', fields: ['l2'] },
  trades: { kind: 'trade', fields: ['trades', 'last_trade'] },
} as const;
type PricePart = keyof typeof PRICE_PARTS;

export function deliveryFilter(kind: TopicKind, subtopics: Subtopics | undefined): DeliveryFilter {
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
