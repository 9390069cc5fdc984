import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import type { JsonObject } from '../../src/domain/json.js';
import { replayEnvelope, replayLine } from '../../src/gateway/envelope.js';
import { RedisTopicStore } from '../../src/store/redis/redis-store.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';

/**
 * The replay's splice (replayLine) over what Redis really holds: payloads committed through the commit
 * script and read back as stored give, line for line, the bytes of the parsed entries' envelopes.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay line test');
const PREFIX = `replay-line-${randomBytes(4).toString('hex')}`;
const TOPIC = 'trading.zoë';
const store = new RedisTopicStore(REDIS_URL, { prefix: PREFIX });

afterAll(async () => {
  const redis = await connectRedis(REDIS_URL);
  await deleteKeys(redis, `${PREFIX}:*`);
  redis.disconnect();
  await store.close();
});

const PAYLOADS: JsonObject[] = [
  { kind: 'order', order: { id: 'o-1', status: 'filled', note: 'Zürich — ₹ 100 😀 "quoted" \\ \n\t \u0000 \u2028' } },
  { kind: 'order', '10': 1, '2': 2, b: { '1': [1.5, -0, 1e21, 5e-324, null, true] }, s: 'no lone surrogates: JCS refuses them' },
  { kind: 'trade', price: 99.125, qty: 5_000_000, side: 'buy', ts: '2026-11-26T10:00:00.000Z' },
];

describe('replay line on Redis', () => {
  it('stored payloads spliced give the envelope of the parsed entry, byte for byte', async () => {
    for (const [i, payload] of PAYLOADS.entries()) {
      await store.commit({ eventId: `id "${i}" ☃`, eventTs: '2026-11-26T10:00:00.000Z', changes: [{ topic: TOPIC, type: i === 2 ? 'alert' : 'delta', payload: payload as JsonObject & { kind: string }, state: {} }] });
    }
    const stored = (await store.readStoredAfter(TOPIC, 0, 10)).entries;
    const parsed = (await store.readAfter(TOPIC, 0, 10)).entries;
    expect(stored).toHaveLength(PAYLOADS.length);
    expect(stored.map(replayLine)).toEqual(parsed.map((e) => JSON.stringify(replayEnvelope(e))));
    expect(parsed.map((e) => e.payload)).toEqual(PAYLOADS.map((p) => JSON.parse(JSON.stringify(p))));
  });
});
