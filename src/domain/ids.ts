import { readFileSync } from 'node:fs';

/**
 * The id syntax of the event contract, read from the contract itself (schemas/events/common.json), so
 * topics and events can never disagree: a topic id is valid exactly when an event could carry it.
 */
const COMMON = JSON.parse(readFileSync(new URL('../../schemas/events/common.json', import.meta.url), 'utf8')) as { $defs: Record<string, { pattern?: string }> };

function patternOf(name: string): RegExp {
  const pattern = COMMON.$defs[name]?.pattern;
  if (pattern === undefined) throw new Error(`schemas/events/common.json: $defs.${name} has no pattern`);
  // ajv compiles schema patterns with the `u` flag: the same here.
  return new RegExp(pattern, 'u');
}

/** An ISIN's shape; its ISO 6166 check digit is verified in isin.ts. */
export const ISIN_SHAPE = patternOf('isin');
/** Ids that become part of a topic name: user_id, auction_id. */
export const TOPIC_ID = patternOf('topic_id');
