import type { JsonObject } from '../domain/json.js';

/**
 * What applying one event does to one topic: the delta clients receive and the topic's state afterwards.
 * Produced by the pure reducers, committed by a TopicStore, which assigns the `seq`.
 */
export interface TopicChange {
  topic: string;
  /** Envelope type clients receive for this entry. */
  type: 'delta' | 'alert';
  /** What changed. Always carries a `kind` discriminator (e.g. `l1`, `l2`, `trade`, `order`, `breach`). */
  payload: JsonObject & { kind: string };
  /** The topic's full state after this change; becomes the snapshot. */
  state: JsonObject;
}
