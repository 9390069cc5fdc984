import { readdirSync, readFileSync } from 'node:fs';
import { Ajv2020, type AnySchemaObject, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

/**
 * Shared JSON Schema plumbing for the `schemas/` folder: one ajv instance per folder, validators compiled
 * once at load, and ajv errors turned into one human-readable line (`/bid: must be number`).
 */

/** Registers every `*.json` in `dir` (cross-file `$ref`s resolve by `$id`) and compiles the named ones. */
export function compileSchemaDir<K extends string>(dir: URL, ids: Record<K, string>): Record<K, ValidateFunction> {
  // strict: schema mistakes (unknown keywords, type-less constraints) fail at start-up, not silently at runtime.
  // strictRequired is off because `anyOf: [{required: [a]}, {required: [b]}]` ("a or b") is intended.
  const ajv = new Ajv2020({ strict: true, strictRequired: false, strictNumbers: true, discriminator: true });
  addFormats.default(ajv);
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    ajv.addSchema(JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as AnySchemaObject);
  }
  const out = {} as Record<K, ValidateFunction>;
  for (const key of Object.keys(ids) as K[]) {
    const fn = ajv.getSchema(ids[key]);
    if (!fn) throw new Error(`schema ${ids[key]} not found in ${dir.pathname}`);
    out[key] = fn;
  }
  return out;
}

/** One line describing why validation failed. anyOf alternatives collapse into `a or b`. */
export function describeErrors(errors: ErrorObject[] | null | undefined): string {
  if (!errors?.length) return 'invalid';
  const alternatives = errors.filter((e) => e.keyword === 'anyOf');
  const isBranch = (e: ErrorObject) => alternatives.some((a) => e.schemaPath.startsWith(`${a.schemaPath}/`));
  return errors
    .filter((e) => !isBranch(e))
    .map((e) => {
      const message =
        e.keyword === 'anyOf'
          ? errors.filter((b) => b.schemaPath.startsWith(`${e.schemaPath}/`)).map(messageOf).join(' or ')
          : messageOf(e);
      return `${pathOf(e)}: ${message}`;
    })
    .join('; ');
}

function pathOf(e: ErrorObject): string {
  if (e.keyword === 'discriminator') return `${e.instancePath}/${String(e.params['tag'])}`;
  return e.instancePath === '' ? '/' : e.instancePath;
}

function messageOf(e: ErrorObject): string {
  const p = e.params;
  switch (e.keyword) {
    case 'discriminator':
      return p['error'] === 'mapping' ? `unknown type '${String(p['tagValue'])}'` : 'must be a string';
    case 'additionalProperties':
      return `must NOT have additional property '${String(p['additionalProperty'])}'`;
    case 'enum':
      return `must be one of ${JSON.stringify(p['allowedValues'])}`;
    case 'const':
      return `must be ${JSON.stringify(p['allowedValue'])}`;
    default:
      return e.message ?? e.keyword;
  }
}
