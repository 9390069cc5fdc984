export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** What JSON.stringify escapes in a string (quote, backslash, control characters, and surrogates when unpaired). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what JSON escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(text)`, the same bytes: text with nothing to escape is itself between quotes, which
 * skips the serialiser for the short ids and times the replay and hash chain write per entry.
 */
export function jsonString(text: string): string {
  return NEEDS_ESCAPE.test(text) ? JSON.stringify(text) : `"${text}"`;
}

/**
 * Deepest nesting of arrays/objects accepted in anything the system keeps or re-serialises. Deeper
 * values are refused at the edge: JSON.stringify and recursive validators overflow the stack on them.
 */
export const MAX_JSON_DEPTH = 64;

/** Whether `value` nests arrays/objects deeper than `maxDepth` (`1` and `[]` have depth 0 and 1). Iterative: safe at any depth. */
export function nestingExceeds(value: unknown, maxDepth: number = MAX_JSON_DEPTH): boolean {
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    if (typeof item.value !== 'object' || item.value === null) continue;
    if (item.depth >= maxDepth) return true;
    for (const child of Object.values(item.value)) stack.push({ value: child, depth: item.depth + 1 });
  }
  return false;
}

/** `value` with every array/object below `maxDepth` replaced by a marker string. Recursion is bounded by `maxDepth`. */
export function pruneNesting(value: unknown, maxDepth: number = MAX_JSON_DEPTH): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (maxDepth <= 0) return '[nested too deeply: removed]';
  if (Array.isArray(value)) return value.map((v: unknown) => pruneNesting(v, maxDepth - 1));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, pruneNesting(v, maxDepth - 1)]));
}
