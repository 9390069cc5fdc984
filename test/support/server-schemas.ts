import { readFileSync } from 'node:fs';
import { compileSchemaDir, describeErrors } from '../../src/domain/json-schema.js';

/**
 * The server -> client contract (schemas/server) as a test guard. The kit's clients (clients.ts) hand
 * every message they receive to `checkReceived`; a message the schemas reject is recorded, and a vitest
 * hook registered here fails the test it arrived in (afterEach), or the file (afterAll) for one that
 * arrived after its last test. So every test that talks to the server through the kit also checks that
 * everything the server said is in the contract. Off outside vitest: benchmarks use the same clients.
 */

const DIR = new URL('../../schemas/server/', import.meta.url);
const ID = (name: string) => `https://bondx.example/schemas/server/${name}.json`;
const validators = compileSchemaDir(DIR, { envelope: ID('envelope'), refusal: ID('refusal') });

type SchemaFile = { oneOf?: { $ref: string }[]; properties?: { type?: { const?: string } } };
const schemaFile = (name: string) => JSON.parse(readFileSync(new URL(name, DIR), 'utf8')) as SchemaFile;

/** Every envelope type the contract has, read from it: the `type` const of each of envelope.json's alternatives. */
export const SERVER_ENVELOPE_TYPES: readonly string[] = (schemaFile('envelope.json').oneOf ?? []).map(({ $ref }) => {
  const type = schemaFile($ref).properties?.type?.const;
  if (type === undefined) throw new Error(`schemas/server/${$ref} has no properties.type.const`);
  return type;
});

/** Why `value` is not a server envelope the contract allows; undefined if it is one. */
export function envelopeProblem(value: unknown): string | undefined {
  return validators.envelope(value) ? undefined : describeErrors(validators.envelope.errors);
}

/** Why `data` is not the `err.data` of a Socket.IO refusal (connect_error) the contract allows. */
export function refusalProblem(data: unknown): string | undefined {
  return validators.refusal(data) ? undefined : describeErrors(validators.refusal.errors);
}

const GUARDED = process.env.VITEST !== undefined;
const violations: string[] = [];
/** Per transport, the envelope types checked so far (a test can tell the guard saw what it drove). */
const checked = new Map<string, Set<string>>();

function record(problem: string | undefined, what: string, value: unknown): void {
  if (problem !== undefined) violations.push(`${what}: ${problem}\n  ${JSON.stringify(value).slice(0, 600)}`);
}

/**
 * A message one of the kit's clients received: a Socket.IO event (`event`: its name, which must be the
 * envelope's type) or a plain-WebSocket frame (`event` undefined), batches still packed.
 */
export function checkReceived(transport: string, envelope: unknown, event?: string): void {
  if (!GUARDED) return;
  record(envelopeProblem(envelope), `${transport} ${event ?? 'frame'}`, envelope);
  const type = (envelope as { type?: unknown } | null)?.type;
  if (typeof type === 'string') checked.set(transport, (checked.get(transport) ?? new Set()).add(type));
  if (event !== undefined && event !== type) violations.push(`socketio event '${event}' carries an envelope of type '${String(type)}'`);
}

/** A Socket.IO connect_error's `data` (undefined when the client itself gave up, e.g. a timeout). */
export function checkRefusal(data: unknown): void {
  if (GUARDED && data !== undefined) record(refusalProblem(data), 'socketio connect_error data', data);
}

/** The envelope types the guard has checked on `transport` in this file. */
export function checkedTypes(transport: string): string[] {
  return [...(checked.get(transport) ?? [])].sort();
}

/** The contract violations seen since the last call. */
export function takeViolations(): string[] {
  return violations.splice(0);
}

function failOnViolations(): void {
  const seen = takeViolations();
  if (seen.length > 0) throw new Error(`the server sent ${seen.length} message(s) outside schemas/server:\n${seen.slice(0, 5).join('\n')}`);
}

if (GUARDED) {
  const { afterAll, afterEach } = await import('vitest');
  afterEach(failOnViolations);
  afterAll(failOnViolations);
}
