import { expect, it } from 'vitest';
import { redisKeys } from '../../src/store/redis/keys.js';
import { TestCluster } from '../support/redis-cluster-ops.js';
import { clusterSeeds, connectCluster } from '../support/services.js';
import { sleep, waitFor } from '../support/waits.js';
import { backboneSuite } from './backbone.suite.js';

// Never skip: without the cluster these tests must fail. `npm test` (scripts/test.sh) starts the 3 + 3
// Redis Cluster and sets BONDX_TEST_REDIS_CLUSTER_NODES; the processes get it as REDIS_CLUSTER_NODES.
const SEEDS = clusterSeeds('the Redis Cluster e2e tests');
const cluster = new TestCluster(SEEDS);

backboneSuite({ label: 'a 3 + 3 Redis Cluster', env: { REDIS_CLUSTER_NODES: SEEDS, REDIS_URL: '' }, connect: () => connectCluster(SEEDS) }, (backbone) => {
  it('f. the cluster fails over mid-stream (CLUSTER FAILOVER, then a master SIGKILLed with acknowledged writes its replica lacks): nothing lost or duplicated, clients contiguous', async () => {
    const keys = redisKeys(backbone.store.keys.prefix);
    const clients = [backbone.subscribe('f-market', '/market'), backbone.subscribe('f-market-batched', '/market', 10), backbone.subscribe('f-trading', '/trading')];
    await Promise.all(clients.map((c) => c.connectTo(backbone.gateway)));
    // A planned failover of the shard holding a hot ISIN, then a crash of the one holding the trading user.
    const servedBy = async (topic: string) => (await cluster.masterOf(keys.meta(topic))) ?? expect.fail(`no master serves ${topic}`);
    const planned = await servedBy('prices.IN0020240019');
    let killed: number | undefined;
    let epochsBefore = new Map<string, string | undefined>();
    const stream = backbone.produceStream(1500, { batch: 10, pauseMs: 10 });
    try {
      await waitFor(() => clients.every((c) => c.checker.received >= 60), 20_000, 'events flowing', 50);
      epochsBefore = new Map(await Promise.all([...(await backbone.heads()).keys()].map(async (t) => [t, (await backbone.store.snapshot(t))?.epoch] as const)));
      await cluster.failover(await cluster.replicaOf(planned));
      backbone.timings.push(`f. CLUSTER FAILOVER of ${planned} after ${clients.map((c) => c.checker.received).join('/')} entries`);
      await waitFor(() => clients.every((c) => c.checker.received >= 200), 30_000, 'events flowing after the failover', 50);
      const crashed = await servedBy('trading.e2e-trader');
      // Its replica cut off while the master acknowledges commits, then the master killed: the replica
      // promoted lacks them, writes the cluster acknowledged (and clients were sent) and lost.
      const thaw = await cluster.cutOff(crashed);
      let ackedCutOff = 0;
      try {
        const before = await backbone.store.snapshot('trading.e2e-trader');
        await sleep(1000);
        ackedCutOff = ((await backbone.store.snapshot('trading.e2e-trader'))?.seq ?? 0) - (before?.seq ?? 0);
        killed = crashed;
        await cluster.kill(crashed);
      } finally {
        thaw();
      }
      const killedAt = Date.now();
      expect(ackedCutOff, 'trading entries acknowledged while the replica was cut off').toBeGreaterThan(0);
      // Its replica takes its slots over once the node timeout (2 s) passes; commits to them fail until then.
      await waitFor(async () => ![undefined, crashed].includes(await cluster.masterOf(keys.meta('trading.e2e-trader'))), 20_000, 'a replica to take the killed master over', 100);
      backbone.timings.push(`f. master ${crashed} SIGKILLed after ${clients.map((c) => c.checker.received).join('/')} entries (${ackedCutOff} trading entries acknowledged with its replica cut off), replaced in ${((Date.now() - killedAt) / 1000).toFixed(1)} s`);
      await stream;
    } finally {
      await stream.catch(() => undefined);
      // Back as a replica of the node that replaced it: the cluster is whole again for the tests after this one.
      if (killed !== undefined) await cluster.restart(killed);
      await cluster.waitWhole();
    }
    // Every entity gets a next event: one whose shard lost acknowledged writes is caught by its own offset then.
    await backbone.produceStream(100, { batch: 10 });
    await backbone.waitForProjection(60_000);
    await backbone.expectHistoriesMatchUpstream();
    // The loss was real, and found: the projector re-seeked the trading partition to what the promoted replica held.
    const reseeks = backbone.projector.logs().filter((l) => String(l.msg).includes('re-seeking to the stored offset'));
    expect(reseeks.map((l) => String(l.stream)).some((stream) => stream.includes('.trading/')), backbone.projector.describe(30)).toBe(true);
    const topicHeads = await backbone.heads();
    await waitFor(() => clients.every((c) => c.topics.every((t) => c.last(t) === topicHeads.get(t))), 20_000, () => `every client at the head\n${clients.map((c) => `${c.name}: ${c.topics.map((t) => `${t}=${c.last(t)}/${topicHeads.get(t)}`).join(' ')}`).join('\n')}`, 50);
    for (const c of clients) {
      expect(c.checker.violations, c.name).toEqual([]);
      expect(c.errors, c.name).toEqual([]);
      for (const topic of c.topics) {
        // Kafka holds every record, so what a shard lost is projected again with the same seqs: the epoch stands and nobody re-syncs.
        expect((await backbone.store.snapshot(topic))?.epoch, `${topic}: epoch`).toBe(epochsBefore.get(topic));
        backbone.expectDeliveredExactlyOnce(c, topic, await backbone.history(topic));
      }
      expect(c.checker.resyncs, c.name).toBe(0);
      c.close();
    }
  }, 120_000);
});
