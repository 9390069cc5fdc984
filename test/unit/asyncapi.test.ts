import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type AsyncAPIDocumentInterface, type Diagnostic, fromFile, Parser } from '@asyncapi/parser';
import { beforeAll, describe, expect, it } from 'vitest';
import { STREAMS } from '../../src/domain/topics.js';
import { FAMILIES, kafkaTopic } from '../../src/ingest/kafka/routing.js';
import { CLIENT_MESSAGE_KINDS } from '../../src/protocol/messages.js';
import { SERVER_ENVELOPE_TYPES } from '../support/server-schemas.js';

/**
 * asyncapi.yaml, parsed and validated by the official parser (@asyncapi/parser: the AsyncAPI 3.0 schema,
 * the spec's rules, every $ref resolved, schemas/ included), then compared with the code: every stream,
 * every server envelope type (read from schemas/server), every client message kind (CLIENT_MESSAGE_KINDS)
 * and every Kafka family must be in it, and nothing else.
 */

const FILE = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));
const parser = new Parser();
const errors = (diagnostics: Diagnostic[]) => diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);

let document: AsyncAPIDocumentInterface;

beforeAll(async () => {
  const parsed = await fromFile(parser, FILE).parse();
  expect(errors(parsed.diagnostics)).toEqual([]);
  if (!parsed.document) throw new Error('asyncapi.yaml did not parse');
  document = parsed.document;
}, 60_000);

const sorted = (list: readonly string[]) => [...list].sort();
const messagesOf = (operationId: string) => sorted(document.operations().get(operationId)?.messages().all().map((m) => m.name() ?? m.id()) ?? []);

describe('asyncapi.yaml', () => {
  it('is AsyncAPI 3.0 and names every stream on both transports', () => {
    expect(document.version()).toBe('3.0.0');
    for (const id of ['socketio', 'websocket']) {
      expect(document.channels().get(id)?.parameters().get('stream')?.schema()?.enum()).toEqual([...STREAMS]);
    }
  });

  it('the gateway sends every server envelope type and receives every client message kind, on both transports', () => {
    for (const transport of ['socketio', 'websocket']) {
      expect(messagesOf(`${transport}Send`)).toEqual(sorted(SERVER_ENVELOPE_TYPES));
      expect(messagesOf(`${transport}Receive`)).toEqual(sorted(CLIENT_MESSAGE_KINDS));
      expect(document.operations().get(`${transport}Send`)?.action()).toBe('send');
      expect(document.operations().get(`${transport}Receive`)?.action()).toBe('receive');
    }
  });

  it('each message’s payload is the schema of that message (references resolved into schemas/)', () => {
    for (const name of [...SERVER_ENVELOPE_TYPES, ...CLIENT_MESSAGE_KINDS]) {
      const payload = document.components().messages().get(name)?.payload();
      expect(payload?.properties()?.['type']?.const(), name).toBe(name);
    }
    // A second-level reference (schemas/server/common.json) is resolved too.
    expect(document.components().messages().get('snapshot')?.payload()?.properties()?.['seq']?.type()).toBe('integer');
  });

  it('the projector receives every upstream event type from its Kafka family', () => {
    const kafka = document.channels().all().filter((c) => c.id().startsWith('kafka.'));
    expect(sorted(kafka.map((c) => c.address() ?? ''))).toEqual(sorted(FAMILIES.map((f) => kafkaTopic('bondx', f))));
    const eventSchemas = JSON.parse(readFileSync(new URL('../../schemas/events/event.json', import.meta.url), 'utf8')) as { oneOf: { $ref: string }[] };
    const inDocument = kafka.flatMap((c) => c.messages().all()).flatMap((m) => {
      const type = m.payload()?.properties()?.['type'];
      return type?.const() !== undefined ? [String(type.const())] : (type?.enum() ?? []).map(String);
    });
    const inSchemas = eventSchemas.oneOf.flatMap(({ $ref }) => {
      const { properties } = JSON.parse(readFileSync(new URL(`../../schemas/events/${$ref}`, import.meta.url), 'utf8')) as { properties: { type: { const?: string; enum?: string[] } } };
      return properties.type.const !== undefined ? [properties.type.const] : (properties.type.enum ?? []);
    });
    expect(sorted(inDocument)).toEqual(sorted(inSchemas));
  });

  it('an invalid document is reported (the check above is not vacuous)', async () => {
    const broken = readFileSync(FILE, 'utf8').replace("channel: { $ref: '#/channels/socketio' }", "channel: { $ref: '#/channels/nowhere' }");
    const parsed = await parser.parse(broken, { source: FILE });
    expect(errors(parsed.diagnostics).length).toBeGreaterThan(0);
  }, 60_000);
});
