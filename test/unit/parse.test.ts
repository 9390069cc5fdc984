import { describe, expect, it } from 'vitest';
import { ClientError, type ErrorCode } from '../../src/protocol/errors.js';
import { MAX_MESSAGE_DEPTH, parseClientFrame, parseClientMessage } from '../../src/protocol/parse.js';

/** The ClientError `fn` throws (fails the test if it throws nothing or something else). */
function clientError(fn: () => unknown): { code: ErrorCode; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ClientError);
    const { code, details } = e as ClientError;
    return { code, details };
  }
  throw new Error('expected a ClientError');
}

describe('parseClientMessage', () => {
  it.each<[string, unknown, unknown]>([
    ['subscribe', { topic: 'prices.IN0020230085' }, { type: 'subscribe', topic: 'prices.IN0020230085' }],
    [
      'subscribe',
      {
        type: 'subscribe',
        topic: 'prices.IN0020230085',
        subtopics: { levels: 'L1, L2', trades: false },
        resume_from_seq: 0,
        epoch: 'ep-1',
        compression: true,
        batch_size: 1000,
        correlation_id: 'c1',
      },
      {
        type: 'subscribe',
        topic: 'prices.IN0020230085',
        subtopics: { levels: 'L1, L2', trades: false },
        resume_from_seq: 0,
        epoch: 'ep-1',
        compression: true,
        batch_size: 1000,
        correlation_id: 'c1',
      },
    ],
    ['subscribe', '{"topic":"auctions.A1","resume_from_seq":42}', { type: 'subscribe', topic: 'auctions.A1', resume_from_seq: 42 }],
    ['unsubscribe', { topic: 'auctions.A1', correlation_id: 'c2' }, { type: 'unsubscribe', topic: 'auctions.A1', correlation_id: 'c2' }],
    ['ping', undefined, { type: 'ping' }],
    ['ping', { correlation_id: 'c3' }, { type: 'ping', correlation_id: 'c3' }],
    ['background_mode', { enabled: true }, { type: 'background_mode', enabled: true }],
  ])('parses %s %j', (kind, data, message) => {
    expect(parseClientMessage(kind, data, 1024)).toEqual(message);
  });

  it.each<[string, string, unknown, string]>([
    ['unknown kind', 'subscribe_all', {}, "unknown message type 'subscribe_all'"],
    ['prototype key as kind', 'constructor', {}, "unknown message type 'constructor'"],
    ['malformed JSON string', 'subscribe', '{"topic":', 'malformed JSON'],
    ['array', 'subscribe', ['prices.X'], 'message must be a JSON object'],
    ['JSON string of a number', 'ping', '5', 'message must be a JSON object'],
    ['type differing from kind', 'subscribe', { type: 'unsubscribe', topic: 't' }, "type 'unsubscribe' does not match event 'subscribe'"],
    ['missing topic', 'subscribe', {}, "/: must have required property 'topic'"],
    ['empty topic', 'unsubscribe', { topic: '' }, '/topic: must NOT have fewer than 1 characters'],
    ['topic over 128 chars', 'subscribe', { topic: 'x'.repeat(129) }, '/topic: must NOT have more than 128 characters'],
    ['batch_size 0', 'subscribe', { topic: 't', batch_size: 0 }, '/batch_size: must be >= 1'],
    ['batch_size 1001', 'subscribe', { topic: 't', batch_size: 1001 }, '/batch_size: must be <= 1000'],
    ['negative resume_from_seq', 'subscribe', { topic: 't', resume_from_seq: -1 }, '/resume_from_seq: must be >= 0'],
    ['fractional resume_from_seq', 'subscribe', { topic: 't', resume_from_seq: 1.5 }, '/resume_from_seq: must be integer'],
    ['bad levels', 'subscribe', { topic: 't', subtopics: { levels: 'L3' } }, '/subtopics/levels: must match pattern "^\\s*L[12]\\s*(,\\s*L[12]\\s*)*$"'],
    ['misspelt option', 'subscribe', { topic: 't', resume_from: 3 }, "/: must NOT have additional property 'resume_from'"],
    ['background_mode without enabled', 'background_mode', {}, "/: must have required property 'enabled'"],
    ['enabled as string', 'background_mode', { enabled: 'yes' }, '/enabled: must be boolean'],
  ])('rejects %s with INVALID_MESSAGE', (_name, kind, data, reason) => {
    expect(clientError(() => parseClientMessage(kind, data, 1024))).toEqual({ code: 'INVALID_MESSAGE', details: { reason } });
  });
});

describe('parseClientFrame', () => {
  it('parses a frame by its type', () => {
    expect(parseClientFrame('{"type":"subscribe","topic":"risk.u1","batch_size":10}', 1024)).toEqual({
      type: 'subscribe',
      topic: 'risk.u1',
      batch_size: 10,
    });
    expect(parseClientFrame('{"type":"ping"}', 1024)).toEqual({ type: 'ping' });
  });

  it('refuses frames over maxBytes, counting UTF-8 bytes', () => {
    const frame = JSON.stringify({ type: 'subscribe', topic: 'é'.repeat(20) }); // é is 2 bytes in UTF-8
    expect(parseClientFrame(frame, Buffer.byteLength(frame))).toMatchObject({ type: 'subscribe' });
    expect(clientError(() => parseClientFrame(frame, frame.length))).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      details: { bytes: Buffer.byteLength(frame), max_bytes: frame.length },
    });
  });

  it.each<[string, string, string]>([
    ['bad JSON', '{"type":', 'malformed JSON'],
    ['not an object', '"ping"', 'message must be a JSON object'],
    ['no type', '{"topic":"t"}', "/: must have required property 'type'"],
    ['unknown type', '{"type":"hello"}', "unknown message type 'hello'"],
    ['schema failure', '{"type":"subscribe","topic":"t","batch_size":"10"}', '/batch_size: must be integer'],
  ])('rejects %s with INVALID_MESSAGE', (_name, text, reason) => {
    expect(clientError(() => parseClientFrame(text, 1024))).toEqual({ code: 'INVALID_MESSAGE', details: { reason } });
  });
});

/** `[[[…]]]` nested `depth` levels, built without recursion. */
function nested(depth: number): unknown {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
}

describe('bounds shared by both transports', () => {
  const tooDeep = { code: 'INVALID_MESSAGE', details: { reason: `nested deeper than ${MAX_MESSAGE_DEPTH} levels` } };

  it('refuses values nested beyond MAX_MESSAGE_DEPTH, however deep, without overflowing the stack', () => {
    for (const depth of [MAX_MESSAGE_DEPTH, 10_000, 200_000]) {
      const value = { topic: 'prices.IN0020230085', padding: nested(depth) };
      expect(clientError(() => parseClientMessage('subscribe', value, 1 << 30))).toEqual(tooDeep);
    }
    const text = `{"type":"subscribe","topic":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    expect(clientError(() => parseClientFrame(text, 1 << 20))).toEqual(tooDeep);
    expect(clientError(() => parseClientMessage('subscribe', text, 1 << 20))).toEqual(tooDeep);
  });

  it('lets schema-shaped nesting through to validation', () => {
    // MAX_MESSAGE_DEPTH - 1 levels under the message object: deep, but within the bound.
    expect(clientError(() => parseClientMessage('subscribe', { topic: nested(MAX_MESSAGE_DEPTH - 1) }, 1024))).toEqual({
      code: 'INVALID_MESSAGE',
      details: { reason: '/topic: must be string' },
    });
  });

  it('measures decoded values by their JSON size, the same as text', () => {
    const value = { topic: 'prices.IN0020230085', correlation_id: 'é'.repeat(100) };
    const bytes = Buffer.byteLength(JSON.stringify(value));
    expect(clientError(() => parseClientMessage('subscribe', value, bytes - 1))).toEqual({ code: 'PAYLOAD_TOO_LARGE', details: { bytes, max_bytes: bytes - 1 } });
    expect(clientError(() => parseClientMessage('subscribe', JSON.stringify(value), bytes - 1))).toEqual({ code: 'PAYLOAD_TOO_LARGE', details: { bytes, max_bytes: bytes - 1 } });
  });

  it('refuses binary attachments (Socket.IO decodes them into Buffers)', () => {
    expect(clientError(() => parseClientMessage('subscribe', { topic: Buffer.from('prices.X') }, 1024))).toEqual({
      code: 'INVALID_MESSAGE',
      details: { reason: 'binary data is not supported; send JSON' },
    });
  });
});
