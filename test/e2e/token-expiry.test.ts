import { afterAll, beforeAll, describe, it, type ExpectStatic } from 'vitest';
import jwt from 'jsonwebtoken';
import type { ErrorEnvelope } from '../../src/protocol/messages.js';
import { openClient, type TestClient, type Transport, TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, TEST_SECRET, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * Tokens expire mid-stream (issue 8 §3), over real Socket.IO and WebSocket clients on loopback: at its
 * token's `exp` plus the grace period a connection gets TOKEN_EXPIRED and is closed (WebSocket 4401),
 * unless it sent a valid `refresh` for the same user first; a bad refresh changes nothing.
 * Tokens live about two seconds, so every case takes a few; the cases run concurrently.
 */

const ISIN = 'IN0020240019';
const TOPIC = `prices.${ISIN}`;
const GRACE_S = 1;
/** The sweep runs every 250 ms; the rest is room for a busy machine. */
const CLOSE_SLACK_MS = 1500;

let system: TestSystem;
const clients: TestClient[] = [];

beforeAll(async () => {
  system = await startTestSystem({ JWT_EXPIRY_GRACE: String(GRACE_S) });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await system.close();
});

const nowS = () => Math.floor(Date.now() / 1000);
const sign = (claims: Record<string, unknown>, secret = TEST_SECRET) => jwt.sign(claims, secret);
/** When the server must close a connection whose token has this exp. */
const deadlineMs = (exp: number) => (exp + GRACE_S) * 1000;

interface Watched {
  client: TestClient;
  /** Resolves when the server closed the connection, with the close code (WebSocket) or reason (Socket.IO) and when. */
  closed: Promise<{ code: number | string; at: number }>;
  isClosed: () => boolean;
}

async function open(transport: Transport, user: string, exp: number): Promise<Watched> {
  const client = await openClient(transport, system.server.url, 'market', ISIN, sign({ sub: user, exp }));
  clients.push(client);
  let done = false;
  const closed = client.closed().then(({ code }) => {
    done = true;
    return { code, at: Date.now() };
  });
  return { client, closed, isClosed: () => done };
}

const deltas = (client: TestClient) => client.received.filter((e) => e.topic === TOPIC && e.type === 'delta');

/** Publishes quotes and waits until the client has received `n` more deltas than before. */
async function streamed(client: TestClient, n: number): Promise<void> {
  const before = deltas(client).length;
  for (let i = 0; i < n; i++) await system.ingest.submit(quote(ISIN, 99 + Math.random(), 100.5), 'test');
  await waitFor(() => deltas(client).length >= before + n, 5000, `${n} deltas`);
}

function expiredError(client: TestClient): ErrorEnvelope | undefined {
  return client.received.find((e): e is ErrorEnvelope => e.type === 'error' && (e as ErrorEnvelope).code === 'TOKEN_EXPIRED');
}

const sleepUntil = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms - Date.now())));

/** The server closed the connection at exp + grace (not before, soon after), saying TOKEN_EXPIRED first. */
async function expectExpired(expect: ExpectStatic, transport: Transport, watched: Watched, exp: number): Promise<void> {
  const late = sleepUntil(deadlineMs(exp) + CLOSE_SLACK_MS).then(() => undefined);
  const closed = await Promise.race([watched.closed, late]);
  expect(closed, 'closed by the server in time').toBeDefined();
  expect(closed?.code).toBe(transport === 'websocket' ? 4401 : 'io server disconnect');
  expect(closed?.at).toBeGreaterThanOrEqual(deadlineMs(exp));
  expect(expiredError(watched.client)?.details).toEqual({ expired_at: new Date(exp * 1000).toISOString() });
}

describe.concurrent.each(TRANSPORTS)('over %s', (transport) => {
  it('streams until exp + grace, then sends TOKEN_EXPIRED and closes (4401)', async ({ expect }) => {
    const exp = nowS() + 2;
    const watched = await open(transport, 'erin', exp);
    await streamed(watched.client, 2);
    await expectExpired(expect, transport, watched, exp);
  });

  it('a refresh before exp keeps it streaming past the old exp, until the new one', async ({ expect }) => {
    const exp = nowS() + 2;
    const watched = await open(transport, 'rita', exp);
    const { client, isClosed } = watched;
    const newExp = exp + 2;
    const ack = await client.request('refresh', { token: sign({ sub: 'rita', exp: newExp }) });
    expect(ack.type).toBe('ack');
    expect(ack.payload).toEqual({ action: 'refresh', expires_at: new Date(newExp * 1000).toISOString() });

    // Past the old deadline (with room for a sweep): still open, and live deltas keep arriving.
    await sleepUntil(deadlineMs(exp) + 500);
    expect(isClosed()).toBe(false);
    await streamed(client, 3);
    const seqs = deltas(client).map((e) => e.seq as number);
    expect(seqs).toEqual(seqs.map((_, i) => (seqs[0] as number) + i));
    expect((await client.request('ping', {})).type).toBe('pong');
    expect(expiredError(client)).toBeUndefined();

    // The refreshed token's own expiry is enforced the same way.
    await expectExpired(expect, transport, watched, newExp);
  });

  it('a bad refresh gets AUTH_INVALID, changes nothing, and the connection still closes at the original exp', async ({ expect }) => {
    const exp = nowS() + 2;
    const later = exp + 60;
    const watched = await open(transport, 'bob', exp);
    const { client, isClosed } = watched;
    const bad: [string, string][] = [
      ['another user', sign({ sub: 'mallory', exp: later })],
      ['bad signature', sign({ sub: 'bob', exp: later }, 'not-the-server-secret-0123456789abcdef')],
      ['already expired', sign({ sub: 'bob', exp: nowS() - 10 })],
      ['no exp', sign({ sub: 'bob' })],
      ['not a JWT', 'x.y.z'],
    ];
    for (const [what, token] of bad) {
      const reply = (await client.request('refresh', { token })) as ErrorEnvelope;
      expect(reply.code, what).toBe('AUTH_INVALID');
      expect(isClosed(), what).toBe(false);
    }
    const malformed = (await client.request('refresh', {})) as ErrorEnvelope;
    expect(malformed.code).toBe('INVALID_MESSAGE');
    // Still streaming on the original token until then.
    await streamed(client, 1);

    await expectExpired(expect, transport, watched, exp);
  });
});
