import { BondxClient, BondxError, type ReplayedEnvelope } from '@bondx/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * `client.replay()` of @bondx/client against a real gateway on both transports: the asked range as an
 * async iterable and the server's account in `done`, a live subscription of the same topic undisturbed
 * (its seqs and state stay the live ones), refusals as typed errors.
 */

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const COMMITTED = 30;

let system: TestSystem;
const clients: BondxClient[] = [];

beforeAll(async () => {
  system = await startTestSystem();
  for (let i = 0; i < COMMITTED; i++) await system.ingest.submit(quote(ISIN, 99 + i / 1000, 99.6), 'test');
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await system.close();
});

function client(transport: (typeof TRANSPORTS)[number], user = 'replayer'): BondxClient {
  const c = new BondxClient({ url: system.server.url, token: system.token(user), transport });
  clients.push(c);
  return c;
}

describe.each(TRANSPORTS)('client.replay over %s', (transport) => {
  it('iterates the asked range in order and resolves done with what was served; a live subscription is untouched', async () => {
    const c = client(transport);
    const sub = c.subscribe(TOPIC);
    const live: number[] = [];
    sub.on('delta', (env) => live.push(env.seq));
    await waitFor(() => (sub.seq ?? 0) >= COMMITTED, 5000, 'subscribed');
    const head = sub.seq as number;
    const replay = c.replay(TOPIC, { fromSeq: 3, toSeq: 12, speed: 0 });
    const got: ReplayedEnvelope[] = [];
    for await (const env of replay) {
      got.push(env);
      // Live entries committed mid-replay reach the subscription, not the replay.
      if (got.length === 1) for (let i = 0; i < 3; i++) await system.ingest.submit(quote(ISIN, 98 + i / 1000, 98.6), 'test');
    }
    expect(got.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(got.every((e) => e.meta['replay'] === true && e.topic === TOPIC)).toBe(true);
    expect(await replay.done).toMatchObject({ action: 'replay', cancelled: false, from_seq: 3, to_seq: 12, count: 10, missing: [] });
    await waitFor(() => live.length === 3, 5000, 'live deltas');
    expect(live).toEqual([head + 1, head + 2, head + 3]);
    expect(sub.seq).toBe(head + 3);
    sub.unsubscribe();
  });

  it('opens the stream for a replay alone, and stop() cancels it', async () => {
    const c = client(transport);
    const replay = c.replay(TOPIC, { fromSeq: 1, speed: 0.01 });
    const iterator = replay[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toMatchObject({ seq: 1 });
    replay.stop();
    expect(await replay.done).toMatchObject({ cancelled: true, count: 1 });
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
  });

  it("refuses another user's topic: done rejects and the iteration throws a FORBIDDEN BondxError", async () => {
    const replay = client(transport, 'alice').replay('trading.bob');
    await expect(replay.done).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(async () => {
      for await (const _env of replay) throw new Error('nothing should be replayed');
    }).rejects.toBeInstanceOf(BondxError);
  });
});
