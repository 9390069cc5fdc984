import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withCheckDigit } from '../../src/domain/isin.js';
import { MAX_MESSAGE_DEPTH } from '../../src/protocol/parse.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { openClient, TRANSPORTS, type TestClient, type Transport } from '../support/clients.js';
import { connect, request, startTestSystem, type TestSystem } from '../support/harness.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/** Gateway input and connection handling: whatever a client sends, it gets a documented answer. */

const ISIN = 'IN0020240019';

const REDIS_URL = serviceUrl('REDIS_URL', 'the gateway input tests (two gateways on one Redis)');
const PREFIX = `gwin${process.pid}`;

/** Two gateways on one Redis: what one client does must not depend on which gateway it reached. */
let system: TestSystem;
let other: TestSystem;
const clients: TestClient[] = [];
/** A valid ISIN no test has used yet: a topic whose feed does not exist yet on the gateway. */
let fresh = 0;
const freshIsin = () => withCheckDigit(`XS${String(++fresh).padStart(9, '0')}`);

beforeAll(async () => {
  system = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
  other = await startTestSystem({ REDIS_URL, REDIS_PREFIX: PREFIX });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all([system.close(), other.close()]);
  const redis = await connectRedis(REDIS_URL);
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
});

async function open(transport: Transport, user: string): Promise<TestClient> {
  const client = await openClient(transport, system.server.url, 'market', ISIN, system.token(user));
  clients.push(client);
  return client;
}

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('a subscribe superseded by an unsubscribe of the same fresh topic ends with an ack saying so, never an internal error', async () => {
    const client = await open(transport, 'fickle');
    for (let i = 0; i < 40; i++) {
      const topic = `prices.${freshIsin()}`;
      const [subscribed, unsubscribed] = await Promise.all([client.request('subscribe', { topic }), client.request('unsubscribe', { topic })]);
      expect(unsubscribed).toMatchObject({ type: 'ack', payload: { action: 'unsubscribe', topic } });
      expect(subscribed).toMatchObject({ type: 'ack', payload: { action: 'subscribe', topic } });
      // Whichever way the race went, the hub holds nothing for the topic afterwards.
      expect(system.server.gateway.hub.stats().map((s) => s.topic)).not.toContain(topic);
    }
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
  });

  it('answers a message nested 10,000 levels deep with INVALID_MESSAGE and stays usable', async () => {
    // Serialised by hand: client libraries' own encoders recurse and would overflow first.
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const reply = await sendRawMessage(transport, 'deep', 'subscribe', `{"type":"subscribe","topic":"prices.${ISIN}","padding":${deep}}`);
    expect(reply).toMatchObject({ type: 'error', code: 'INVALID_MESSAGE', details: { reason: `nested deeper than ${MAX_MESSAGE_DEPTH} levels` } });
  });
});

/**
 * Sends one raw message as the transport carries it (a WebSocket text frame; a Socket.IO EVENT packet
 * `2/market,[kind, <message>]` written straight to the engine), resolves with the error it gets, and checks the
 * connection still answers a ping.
 */
async function sendRawMessage(transport: Transport, user: string, kind: string, text: string): Promise<Envelope> {
  if (transport === 'websocket') {
    const client = await open(transport, user);
    const reply = await client.sendRaw(text);
    expect(await client.request('ping', {})).toMatchObject({ type: 'pong' });
    return reply;
  }
  const socket = await connect(system.server.url, '/market', system.token(user));
  try {
    const error = new Promise<Envelope>((resolve) => socket.once('error', resolve));
    socket.io.engine.write(`2/market,[${JSON.stringify(kind)},${text}]`);
    const reply = await error;
    expect(await request(socket, 'ping', {})).toMatchObject({ type: 'pong' });
    return reply;
  } finally {
    socket.close();
  }
}
