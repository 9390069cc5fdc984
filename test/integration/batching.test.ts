import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Envelope } from '../../src/protocol/messages.js';
import { quote } from '../support/events.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * Batching (`batch_size` on subscribe) has no latency floor: entries that arrive in one event-loop
 * turn share a frame, and an entry arriving on its own leaves within its turn, however recently the
 * room sent something. Batches stay in seq order within and across frames.
 */

const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;

const systems: TestSystem[] = [];
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  for (const system of systems.splice(0)) await system.close();
});

interface Frames {
  /** Deltas (batches flattened) with their receipt time. */
  deltas: { env: Envelope; at: number }[];
  /** Envelopes per frame that carried deltas. */
  sizes: number[];
}

async function batchSubscriber(sys: TestSystem, batchSize: number): Promise<Frames> {
  const url = `${sys.server.url.replace('http', 'ws')}/api/v1/ws/market/${ISIN}?token=${encodeURIComponent(sys.token('batcher'))}`;
  const ws = new WebSocket(url);
  sockets.push(ws);
  const frames: Frames = { deltas: [], sizes: [] };
  let acks = 0;
  ws.on('message', (data) => {
    const at = performance.now();
    const env = JSON.parse(data.toString()) as Envelope;
    if (env.type === 'ack') acks++;
    const inner = env.type === 'batch' ? (env.payload as unknown as Envelope[]) : env.type === 'delta' ? [env] : [];
    if (inner.length > 0) frames.sizes.push(inner.length);
    for (const e of inner) frames.deltas.push({ env: e, at });
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  await waitFor(() => acks === 1, 5000, 'path subscribe ack');
  ws.send(JSON.stringify({ type: 'subscribe', topic: TOPIC, batch_size: batchSize }));
  await waitFor(() => acks === 2, 5000, 'batch subscribe ack');
  return frames;
}

async function publish(sys: TestSystem): Promise<void> {
  const outcome = await sys.ingest.submit(quote(ISIN), 'test');
  if (outcome.status !== 'applied') throw new Error(`not applied: ${JSON.stringify(outcome)}`);
}

describe('batching per event-loop turn', () => {
  it('an entry shortly after another is not held back for a batch window', async () => {
    const sys = await startTestSystem();
    systems.push(sys);
    const frames = await batchSubscriber(sys, 100);
    const delays: number[] = [];
    for (let round = 0; round < 8; round++) {
      await publish(sys);
      await waitFor(() => frames.deltas.length === 2 * round + 1, 5000, 'first entry', 1);
      // The room has just sent: a fixed window (formerly 20 ms) would hold the next entry until it closes.
      await sleep(3);
      const sent = performance.now();
      await publish(sys);
      await waitFor(() => frames.deltas.length === 2 * round + 2, 5000, 'second entry', 1);
      delays.push((frames.deltas.at(-1)?.at ?? Number.NaN) - sent);
    }
    delays.sort((a, b) => a - b);
    // The median, so one scheduling hiccup on a busy machine does not decide it.
    expect(delays[delays.length >> 1]).toBeLessThan(8);
  });

  it('entries of one turn share frames of at most batch_size, every seq once and in order', async () => {
    const sys = await startTestSystem();
    systems.push(sys);
    const frames = await batchSubscriber(sys, 10);
    await Promise.all(Array.from({ length: 95 }, () => publish(sys)));
    await waitFor(() => frames.deltas.length === 95, 5000, 'all 95 entries');
    const seqs = frames.deltas.map((d) => d.env.seq);
    expect(seqs).toEqual(Array.from({ length: 95 }, (_, i) => i + 1));
    expect(Math.max(...frames.sizes)).toBeLessThanOrEqual(10);
    // Published together, so they were batched: far fewer frames than entries.
    expect(frames.sizes.length).toBeLessThanOrEqual(20);
  });
});
