import { compileSchemaDir, describeErrors } from '../domain/json-schema.js';
import { ClientError } from './errors.js';
import type { ClientMessage, ClientMessageType } from './messages.js';

/**
 * Client -> server message parsing against schemas/client. Socket.IO clients emit `(kind, data)` where
 * data is an object or a JSON string and may omit `type`; plain WebSocket clients send one JSON frame
 * carrying `type`. Topic syntax is left to the gateway (parseTopic), which knows the stream.
 */

const ID = (name: ClientMessageType) => `https://bondx.example/schemas/client/${name}.json`;
const validators = compileSchemaDir(new URL('../../schemas/client/', import.meta.url), {
  subscribe: ID('subscribe'),
  unsubscribe: ID('unsubscribe'),
  ping: ID('ping'),
  background_mode: ID('background_mode'),
  refresh: ID('refresh'),
} satisfies Record<ClientMessageType, string>);

function invalid(reason: string): ClientError {
  return new ClientError('INVALID_MESSAGE', { reason });
}

function isKind(kind: string): kind is ClientMessageType {
  return Object.hasOwn(validators, kind);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw invalid('malformed JSON');
  }
}

export function parseClientMessage(kind: string, data: unknown): ClientMessage {
  if (!isKind(kind)) throw invalid(`unknown message type '${kind}'`);
  const body = typeof data === 'string' ? parseJson(data) : (data ?? {}); // `emit('ping')` carries no data
  if (!isObject(body)) throw invalid('message must be a JSON object');
  if (body['type'] !== undefined && body['type'] !== kind) throw invalid(`type '${String(body['type'])}' does not match event '${kind}'`);
  const message = { ...body, type: kind };
  const validate = validators[kind];
  if (!validate(message)) throw invalid(describeErrors(validate.errors));
  // The schema for `kind` guarantees the shape of the matching ClientMessage variant.
  return message as ClientMessage;
}

/** Parses one plain-WebSocket text frame (`{"type":"subscribe",...}`), refusing frames over maxBytes. */
export function parseClientFrame(text: string, maxBytes: number): ClientMessage {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new ClientError('PAYLOAD_TOO_LARGE', { bytes, max_bytes: maxBytes });
  const body = parseJson(text);
  if (!isObject(body)) throw invalid('message must be a JSON object');
  if (typeof body['type'] !== 'string') throw invalid("/: must have required property 'type'");
  return parseClientMessage(body['type'], body);
}

/**
 * The `type` and `correlation_id` of a client message, read leniently from an object or JSON text,
 * so even a message that fails validation is counted by kind and gets an error the client can match.
 */
export function peekMessage(data: unknown): { type?: string; correlationId?: string } {
  let body = data;
  if (typeof data === 'string') {
    try {
      body = JSON.parse(data);
    } catch {
      return {};
    }
  }
  if (!isObject(body)) return {};
  const type = body['type'];
  const id = body['correlation_id'];
  return {
    ...(typeof type === 'string' && type.length <= 32 ? { type } : {}),
    ...(typeof id === 'string' && id.length <= 128 ? { correlationId: id } : {}),
  };
}
