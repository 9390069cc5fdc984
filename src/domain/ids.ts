import common from '../../schemas/events/common.json' with { type: 'json' };

/**
 * The id syntax of the event contract, read from the contract itself (schemas/events/common.json), so
 * topics and events can never disagree: a topic id is valid exactly when an event could carry it.
 * A JSON import, not a file read: browsers (the client SDK) load this module too.
 */
const DEFS = common.$defs as Record<string, { pattern?: string }>;

function patternOf(name: string): RegExp {
  const pattern = DEFS[name]?.pattern;
  if (pattern === undefined) throw new Error(`schemas/events/common.json: $defs.${name} has no pattern`);
  // ajv compiles schema patterns with the `u` flag: the same here.
  return new RegExp(pattern, 'u');
}

/** An ISIN's shape; its ISO 6166 check digit is verified in isin.ts. */
export const ISIN_SHAPE = patternOf('isin');
/** Ids that become part of a topic name: user_id, auction_id. */
export const TOPIC_ID = patternOf('topic_id');
