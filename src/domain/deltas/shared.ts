/** Helpers of the delta appliers (and the reducers that compute their payloads). All pure: nothing given is mutated. */

/** Prepends `item` to a newest-first list, keeping at most `max` entries. */
export function prependBounded<T>(list: readonly T[], item: T, max: number): T[] {
  return [item, ...list.slice(0, max - 1)];
}

/** `map` without `key` (a copy). */
export function omit<V>(map: { readonly [key: string]: V }, key: string): { [key: string]: V } {
  const copy = { ...map };
  delete copy[key];
  return copy;
}

/** Rounds derived figures (mid, spread, vwap, bucket edges) so float noise like 0.15000000000000568 never reaches clients. */
export function round(x: number, decimals = 8): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
