import { applyDelta, type DeltaPayload, type StateOf } from '../../domain/deltas/index.js';
import type { JsonObject } from '../../domain/json.js';
import type { TopicChange } from '../../store/topic-store.js';

/**
 * Helpers shared by the per-domain reducers. Reducers are pure: they never mutate the states they are given.
 * A reducer decides whether an event applies and computes the payload of its delta; the new state is then
 * always `applyDelta(state, payload)` (src/domain/deltas), the function clients apply deltas with.
 */

/**
 * The outcome of projecting one event: one change per topic it touches, or `rejected` with a reason when the
 * event does not apply to the current state (e.g. a bid on a closed auction). A rejected event changes
 * nothing (`changes` is empty); the caller dead-letters it.
 */
export type ProjectResult = { changes: TopicChange[]; rejected?: undefined } | { changes: []; rejected: string };

/** A reducer's result for one topic: the payload of its delta, or why the event was refused. */
export type Step<D extends DeltaPayload> = D | { rejected: string };

export type States = ReadonlyMap<string, JsonObject>;

/** One topic's part of a projection: its state before the event and the reducer's step for it. */
export interface Part<D extends DeltaPayload> {
  topic: string;
  state: StateOf<D>;
  step: Step<D>;
  type?: TopicChange['type'];
}

/**
 * The typed state of `topic`, if it has one. States in the store were all produced by applyDelta,
 * so the cast restores the type they were written with.
 */
export function existing<S extends JsonObject>(states: States, topic: string): S | undefined {
  return states.get(topic) as S | undefined;
}

/** The typed state of `topic`, or `fresh()` when the topic has none yet. */
export function stateOf<S extends JsonObject>(states: States, topic: string, fresh: () => S): S {
  return existing<S>(states, topic) ?? fresh();
}

/** Own-property lookup in a JSON map: ids come from upstream, and `constructor` must not find Object.prototype's. */
export function own<V>(map: { readonly [key: string]: V }, key: string): V | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

export function reject(reason: string): { rejected: string } {
  return { rejected: reason };
}

/** Turns per-topic steps into the projection result, each new state from applyDelta; any rejected step rejects the whole event. */
export function finish(...parts: Part<DeltaPayload>[]): ProjectResult {
  const changes: TopicChange[] = [];
  for (const { topic, state, step, type = 'delta' } of parts) {
    if ('rejected' in step) return { changes: [], rejected: step.rejected };
    changes.push({ topic, type, payload: step, state: applyDelta(state, step) });
  }
  return { changes };
}
