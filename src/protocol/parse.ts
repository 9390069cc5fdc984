import { compileSchemaDir, describeErrors } from '../domain/json-schema.js';
import { ClientError } from './errors.js';
import { CLIENT_MESSAGE_KINDS, isClientMessageKind, type ClientMessage, type ClientMessageType } from './messages.js';

/**
 * Client -> server message parsing against schemas/client. Socket.IO clients emit `(kind, data)` where
 * data is an object or a JSON string and may omit `type`; plain WebSocket clients send one JSON frame
 * carrying `type`. Topic syntax is left to the gateway (parseTopic), which knows the stream.
 */

const ID = (name: ClientMessageType) => `https://bondx.example/schemas/client/${name}.json`;
const validators = compileSchemaDir(
  new URL('../../schemas/client/', import.meta.url),
  Object.fromEntries(CLIENT_MESSAGE_KINDS.map((kind) => [kind, ID(kind)])) as Record<ClientMessageType, string>,
);

/**
 * Deepest nesting a client message may have. The schemas need 3 levels (`subtopics.levels`); the bound
 * keeps everything that later walks the value (serialisation for the size check, validation, logging)
 * shallow, so no message can exhaust the stack.
 */
export const MAX_MESSAGE_DEPTH = 16;

function invalid(reason: string): ClientError {
  return new ClientError('INVALID_MESSAGE', { reason });
}

function knownKind(kind: string): ClientMessageType {
  if (!isClientMessageKind(kind)) throw invalid(`unknown message type '${kind}'`);
  return kind;
}

/** The one answer to binary data, a WebSocket binary frame or a Socket.IO attachment alike. */
const BINARY = 'binary data is not supported; send JSON';

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

function checkSize(bytes: number, maxBytes: number): void {
  if (bytes > maxBytes) throw new ClientError('PAYLOAD_TOO_LARGE', { bytes, max_bytes: maxBytes });
}

/** Refuses values nested deeper than MAX_MESSAGE_DEPTH, and binary data, with an explicit stack (no recursion). */
function checkShape(value: unknown): void {
  const pending: [unknown, number][] = [[value, 1]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [v, depth] = next;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > MAX_MESSAGE_DEPTH) throw invalid(`nested deeper than ${MAX_MESSAGE_DEPTH} levels`);
    if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) throw invalid(BINARY);
    for (const child of Object.values(v)) pending.push([child, depth + 1]);
  }
}

/**
 * An untrusted client value, bounded before anything walks it: JSON text (a WebSocket frame, or a
 * Socket.IO client that emits strings) is measured, then parsed; a value Socket.IO already decoded is
 * checked for depth first, because measuring it means serialising it. Over `maxBytes` (UTF-8 bytes of
 * its JSON) it is PAYLOAD_TOO_LARGE, too deep or binary INVALID_MESSAGE, the same on both transports.
 */
function decodeBounded(data: unknown, maxBytes: number): unknown {
  if (typeof data === 'string') {
    checkSize(Buffer.byteLength(data, 'utf8'), maxBytes);
    const value = parseJson(data);
    checkShape(value);
    return value;
  }
  checkShape(data);
  checkSize(Buffer.byteLength(JSON.stringify(data) ?? '', 'utf8'), maxBytes);
  return data;
}

function validateMessage(kind: ClientMessageType, body: unknown): ClientMessage {
  if (!isObject(body)) throw invalid('message must be a JSON object');
  if (body['type'] !== undefined && body['type'] !== kind) throw invalid(`type '${String(body['type'])}' does not match event '${kind}'`);
  const message = { ...body, type: kind };
  const validate = validators[kind];
  if (!validate(message)) throw invalid(describeErrors(validate.errors));
  // The schema for `kind` guarantees the shape of the matching ClientMessage variant.
  return message as ClientMessage;
}

/** Parses one Socket.IO client message: `emit(kind, data)`, data an object, a JSON string, or nothing. */
export function parseClientMessage(kind: string, data: unknown, maxBytes: number): ClientMessage {
  const known = knownKind(kind);
  // `emit('ping')` carries no data.
  return validateMessage(known, data === undefined || data === null ? {} : decodeBounded(data, maxBytes));
}

/** Parses one plain-WebSocket frame (`{"type":"subscribe",...}`); binary frames are refused. */
export function parseClientFrame(frame: string | Uint8Array, maxBytes: number): ClientMessage {
  if (typeof frame !== 'string') throw invalid(BINARY);
  const body = decodeBounded(frame, maxBytes);
  if (!isObject(body)) throw invalid('message must be a JSON object');
  const kind = body['type'];
  if (typeof kind !== 'string') throw invalid("/: must have required property 'type'");
  return validateMessage(knownKind(kind), body);
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
