import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/protocol/messages.js';
import { openClient, type TestClient, type Transport, TRANSPORTS } from '../support/clients.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';
import { SeqChecker } from '../support/seq-checker.js';

/**
 * Second, independent guards of the resume guarantees (README, "Delivery guarantees"), on both
 * transports, through the ordinary subscribe message:
 * - a resume the store can no longer serve exactly (history trimmed past it, or the topic's epoch
 *   changed) gets a fresh snapshot with `meta.resync: true` at the head, then live deltas: never a
 *   partial range, never the new history under the old numbers;
 * - resuming while events are published as fast as they are projected switches from catch-up to live
 *   without a gap or a duplicate, whether the resume point is served from history (no feed held the
 *   topic meanwhile) or from the gateway feed's ring (another subscriber kept it).
 */

const ISINS = { resync: 'IN0020230085', ring: 'IN0020240019', history: 'IN0020192905', anchor: 'IN0020220060' };
const HISTORY_MAX_LEN = 100;

let system: TestSystem;
/** Each test's clients, with their system: closed after the test, so no subscriber keeps a topic's feed for the next one. */
const clients: { sys: TestSystem; client: TestClient }[] = [];

beforeAll(async () => {
  system = await startTestSystem({ HISTORY_MAX_LEN: String(HISTORY_MAX_LEN) });
});
afterEach(async () => {
  const systems = new Set(clients.map((c) => c.sys));
  for (const { client } of clients.splice(0)) client.close();
  for (const sys of systems) await waitFor(() => sys.server.gateway.connectionCounts().total === 0, 5000, 'clients gone');
});
afterAll(async () => system.close());


async function publish(sys: TestSystem, isin: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const outcome = await sys.ingest.submit(quote(isin, 99 + Math.random(), 100.5), 'test');
    if (outcome.status !== 'applied') throw new Error(`quote not applied: ${JSON.stringify(outcome)}`);
    if (i % 50 === 49) await new Promise((r) => setImmediate(r));
  }
}

async function headOf(sys: TestSystem, topic: string): Promise<{ seq: number; epoch: string }> {
  const snapshot = await sys.backends.store.snapshot(topic);
  return { seq: snapshot?.seq ?? 0, epoch: snapshot?.epoch ?? '' };
}

/** A client on another market topic's path, to subscribe and resume the topics under test with plain messages. */
async function open(sys: TestSystem, transport: Transport, user: string): Promise<TestClient> {
  const client = await openClient(transport, sys.server.url, 'market', ISINS.anchor, sys.token(user));
  clients.push({ sys, client });
  return client;
}

const ofTopic = (client: TestClient, topic: string, from = 0) => client.received.slice(from).filter((e) => e.topic === topic && e.type !== 'ack');

describe.each(TRANSPORTS)('resume the store cannot serve exactly, over %s', (transport) => {
  const topic = `prices.${ISINS.resync}`;

  /** Subscribes, unsubscribes, lets `meanwhile` happen, then resumes from the snapshot; returns what the resume got. */
  async function resumeAfter(user: string, meanwhile: () => Promise<void>): Promise<{ snapshot: Envelope; ack: Envelope; got: Envelope[]; client: TestClient }> {
    await publish(system, ISINS.resync, 3);
    const client = await open(system, transport, user);
    expect(await client.request('subscribe', { topic })).toMatchObject({ type: 'ack' });
    const snapshot = ofTopic(client, topic).find((e) => e.type === 'snapshot') as Envelope;
    expect(await client.request('unsubscribe', { topic })).toMatchObject({ type: 'ack' });
    await meanwhile();
    const mark = client.received.length;
    const ack = await client.request('subscribe', { topic, resume_from_seq: snapshot.seq, epoch: snapshot.meta.epoch });
    return { snapshot, ack, got: ofTopic(client, topic, mark), client };
  }

  /** A re-sync: one snapshot at the store's head (marked resync, in the store's epoch), then live deltas from head + 1. */
  async function expectResync(client: TestClient, ack: Envelope, got: Envelope[]): Promise<void> {
    const head = await headOf(system, topic);
    expect(ack).toMatchObject({ type: 'ack', payload: { resync: true } });
    expect(got.map((e) => `${e.type}:${e.seq}`)).toEqual([`snapshot:${head.seq}`]);
    expect(got[0]?.meta).toMatchObject({ resync: true, epoch: head.epoch });
    expect(got[0]?.payload).toEqual((await system.backends.store.snapshot(topic))?.state);
    const mark = client.received.length;
    await publish(system, ISINS.resync, 3);
    await waitFor(() => ofTopic(client, topic, mark).length === 3, 5000, 'live deltas after the re-sync');
    expect(ofTopic(client, topic, mark).map((e) => `${e.type}:${e.seq}`)).toEqual([1, 2, 3].map((i) => `delta:${head.seq + i}`));
  }

  it('a resume from before the history kept gets a resync snapshot at the head, then live deltas', async () => {
    // Nobody follows the topic meanwhile, so no gateway feed keeps a ring of it: only history could serve the resume.
    const { snapshot, ack, got, client } = await resumeAfter(`trimmed-${transport}`, () => publish(system, ISINS.resync, HISTORY_MAX_LEN * 3));
    const read = await system.backends.store.readAfter(topic, snapshot.seq as number, 1);
    expect(read.firstSeq).toBeGreaterThan((snapshot.seq as number) + 1); // the history really lost the range
    expect(read.epoch).toBe(snapshot.meta.epoch); // and the epoch is unchanged: history loss alone decides
    await expectResync(client, ack, got);
  });

  it('a resume naming an epoch the topic no longer has gets a resync snapshot in the new epoch, then live deltas', async () => {
    const { snapshot, ack, got, client } = await resumeAfter(`epoch-${transport}`, async () => {
      const before = (await headOf(system, topic)).seq;
      await system.backends.store.reset(topic);
      // More entries than before the reset: the client's resume point exists again, with other content.
      await publish(system, ISINS.resync, before + 10);
    });
    const head = await headOf(system, topic);
    expect(head.epoch).not.toBe(snapshot.meta.epoch);
    expect(head.seq).toBeGreaterThan(snapshot.seq as number);
    await expectResync(client, ack, got);
  });
});

describe.each(TRANSPORTS)('catch-up to live under full-speed publishing, over %s', (transport) => {
  // Default history: the resume points here must stay within it (only the switch to live is under test).
  let raceSystem: TestSystem;
  beforeAll(async () => {
    raceSystem = await startTestSystem();
  });
  afterAll(async () => raceSystem.close());

  it('resumes switch to live with no gap and no duplicate, from history and from the ring', async () => {
    // The ring topic has a second subscriber all along (its feed lives on); the history topic has none.
    const ringTopic = `prices.${ISINS.ring}`;
    const historyTopic = `prices.${ISINS.history}`;
    const anchor = await open(raceSystem, transport, `anchor-${transport}`);
    expect(await anchor.request('subscribe', { topic: ringTopic })).toMatchObject({ type: 'ack' });

    const race = async (racingTopic: string, user: string): Promise<TestClient> => {
      const client = await open(raceSystem, transport, user);
      expect(await client.request('subscribe', { topic: racingTopic })).toMatchObject({ type: 'ack' });
      for (let round = 0; round < 15; round++) {
        await sleep(5 + ((round * 7) % 30));
        expect(await client.request('unsubscribe', { topic: racingTopic })).toMatchObject({ type: 'ack' });
        await sleep((round * 11) % 25); // missed entries pile up meanwhile
        const seen = ofTopic(client, racingTopic);
        const epoch = seen.find((e) => e.type === 'snapshot')?.meta.epoch;
        // Every other resume asks for batches: the batched catch-up path joins the room the same way.
        const ack = await client.request('subscribe', { topic: racingTopic, resume_from_seq: seen.at(-1)?.seq, epoch, ...(round % 2 === 1 ? { batch_size: 10 } : {}) });
        expect(ack).toMatchObject({ type: 'ack', payload: { resync: false } });
      }
      return client;
    };
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await publish(raceSystem, ISINS.ring, 5);
        await publish(raceSystem, ISINS.history, 5);
        // The in-memory store resolves at once: without a macrotask turn, clients (and timers) would starve.
        await new Promise((r) => setImmediate(r));
      }
    })();
    let raced: TestClient[];
    try {
      raced = await Promise.all([race(ringTopic, `ring-${transport}`), race(historyTopic, `history-${transport}`)]);
    } finally {
      publishing = false;
      await publisher;
    }

    for (const [client, racingTopic] of [
      [raced[0], ringTopic],
      [raced[1], historyTopic],
    ] as const) {
      if (!client) throw new Error('no racing client');
      const head = (await headOf(raceSystem, racingTopic)).seq;
      await waitFor(() => ofTopic(client, racingTopic).at(-1)?.seq === head, 5000, `${racingTopic} at head ${head}`);
      const stream = ofTopic(client, racingTopic);
      const checker = new SeqChecker();
      for (const env of stream) {
        if (env.type === 'snapshot') checker.onSnapshot(env);
        else checker.onEntry(env);
      }
      expect(checker.violations, racingTopic).toEqual([]);
      expect(checker.resyncs).toBe(0);
      const first = stream[0] as Envelope;
      expect(stream.filter((e) => e.type === 'snapshot')).toEqual([first]);
      expect(stream.length - 1).toBe(head - (first.seq as number)); // every seq after the snapshot exactly once
    }
  });
});
