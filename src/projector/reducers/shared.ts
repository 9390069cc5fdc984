import type { JsonObject } from '../../domain/json.js';
import type { TopicChange } from '../../store/topic-store.js';

/** Helpers shared by the per-domain reducers. Reducers are pure: they never mutate the states they are given. */

/**
 * The outcome of projecting one event: one change per topic it touches, or `rejected` with a reason when the
 * event does not apply to the current state (e.g. a bid on a closed auction). A rejected event changes
 * nothing (`changes` is empty); the caller dead-letters it.
 */
export type ProjectResult = { changes: TopicChange[]; rejected?: undefined } | { changes: []; rejected: string };

type Payload = TopicChange['payload'];

/** A reducer's result for one topic: the new state and the delta, or why the event was refused. */
export type Step<S> = { state: S; payload: Payload } | { rejected: string };

export type States = ReadonlyMap<string, JsonObject>;

/**
 * The typed state of `topic`, if it has one. States in the store were all produced by these reducers,
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

/** `map` without `key` (a copy). */
export function omit<V>(map: { readonly [key: string]: V }, key: string): { [key: string]: V } {
  const copy = { ...map };
  delete copy[key];
  return copy;
}

export function reject(reason: string): { rejected: string } {
  return { rejected: reason };
}

/** Turns per-topic steps into the projection result; any rejected step rejects the whole event. */
export function finish(...steps: { topic: string; step: Step<JsonObject>; type?: TopicChange['type'] }[]): ProjectResult {
  const changes: TopicChange[] = [];
  for (const { topic, step, type = 'delta' } of steps) {
    if ('rejected' in step) return { changes: [], rejected: step.rejected };
    changes.push({ topic, type, payload: step.payload, state: step.state });
  }
  return { changes };
}

/** Prepends `item` to a newest-first list, keeping at most `max` entries. */
export function prependBounded<T>(list: readonly T[], item: T, max: number): T[] {
  return [item, ...list.slice(0, max - 1)];
}

/** Rounds derived figures (mid, spread, vwap, bucket edges) so float noise like 0.15000000000000568 never reaches clients. */
export function round(x: number, decimals = 8): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
