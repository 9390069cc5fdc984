import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/protocol/messages.js';
import { openClient, type TestClient, TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { waitFor } from '../support/waits.js';

/**
 * A client that resumes WITHOUT its epoch after the topic's history was reset: the seqs it names belong
 * to the old numbering, and the reply must say which epoch it was served from so the client can tell.
 */
let system: TestSystem;
const clients: TestClient[] = [];

beforeAll(async () => {
  system = await startTestSystem();
});
afterAll(async () => {
  for (const c of clients) c.close();
  await system.close();
});

describe.each(TRANSPORTS)('over %s', (transport) => {
  it('every subscribe and resume reply carries the epoch it was served from', async () => {
    const isin = transport === 'socketio' ? 'IN0020230085' : 'IN0020240019';
    const topic = `prices.${isin}`;
    for (let i = 0; i < 5; i++) await system.ingest.submit(quote(isin, 99 + i / 100), 'test');
    const client = await openClient(transport, system.server.url, 'market', isin, system.token('auditor-of-epochs'));
    clients.push(client);
    await waitFor(() => client.received.some((e) => e.type === 'snapshot' && e.topic === topic), 5000, 'snapshot');
    const snapshot = client.received.find((e) => e.type === 'snapshot' && e.topic === topic) as Envelope;
    const oldEpoch = String(snapshot.meta.epoch);
    await client.request('unsubscribe', { topic });

    // Same epoch: the resume ack names it.
    const same = await client.request('subscribe', { topic, resume_from_seq: 3 });
    expect(same.type).toBe('ack');
    expect(same.payload).toMatchObject({ resumed_from: 3, epoch: oldEpoch });
    await client.request('unsubscribe', { topic });

    // History reset (new epoch), then more events than the client held: seq 3 now names another entry.
    await system.backends.store.reset(topic);
    for (let i = 0; i < 8; i++) await system.ingest.submit(quote(isin, 98 + i / 100), 'test');
    const newEpoch = (await system.backends.store.snapshot(topic))?.epoch;
    expect(newEpoch).not.toBe(oldEpoch);
    const resumed = await client.request('subscribe', { topic, resume_from_seq: 3 });
    expect(resumed.type).toBe('ack');
    expect((resumed.payload as { epoch?: string }).epoch).toBe(newEpoch);
    // With its epoch the client is re-synced rather than resumed.
    await client.request('unsubscribe', { topic });
    const withEpoch = await client.request('subscribe', { topic, resume_from_seq: 3, epoch: oldEpoch });
    expect(withEpoch.payload).toMatchObject({ resync: true, epoch: newEpoch });
  });
});
