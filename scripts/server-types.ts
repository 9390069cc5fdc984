import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { compile, type JSONSchema } from 'json-schema-to-typescript';

/**
 * Writes schemas/server/types.ts: TypeScript types generated from the server -> client JSON Schemas
 * (json-schema-to-typescript). `npm run typecheck` runs this first, so a schema change that the
 * protocol's and the SDK's own types no longer match (test/unit/server-schema-types.test.ts) fails the
 * build. `--check` only says whether the committed file is current (exit 1 if not).
 */

const DIR = new URL('../schemas/server/', import.meta.url);
const OUT = new URL('types.ts', DIR);

/** One root naming every message, so each titled schema becomes one exported type. */
const ROOT: JSONSchema = {
  title: 'ServerMessages',
  type: 'object',
  additionalProperties: false,
  required: ['envelope', 'refusal'],
  properties: { envelope: { $ref: 'envelope.json' }, refusal: { $ref: 'refusal.json' } },
};

/**
 * An object that may have no property at all (`maxProperties: 0`: an empty state, an empty meta) is
 * `Record<string, never>`; the generator alone would write `{}`, which TypeScript reads as "anything".
 */
function withTsTypes(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withTsTypes);
  if (typeof node !== 'object' || node === null) return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, withTsTypes(v)]));
  return out.maxProperties === 0 ? { ...out, tsType: 'Record<string, never>' } : out;
}

export function generateServerTypes(): Promise<string> {
  return compile(ROOT, 'ServerMessages', {
    cwd: fileURLToPath(DIR),
    // Every object the server sends lists its fields: no index signature unless a schema asks for one.
    additionalProperties: false,
    bannerComment: '/* Generated from schemas/server/*.json by scripts/server-types.ts (npm run typecheck): do not edit. */',
    $refOptions: { resolve: { file: { read: (file: { url: string }) => JSON.stringify(withTsTypes(JSON.parse(readFileSync(file.url, 'utf8')))) } } },
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const fresh = await generateServerTypes();
  if (process.argv.includes('--check')) {
    if ((await readFile(OUT, 'utf8').catch(() => '')) !== fresh) {
      console.error('schemas/server/types.ts is stale: run npm run typecheck');
      process.exit(1);
    }
  } else {
    await writeFile(OUT, fresh);
  }
}
