import { randomBytes } from 'node:crypto';
import { ConfigResourceTypes, type Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { compileSchemaDir, describeErrors } from '../../src/domain/json-schema.js';
import type { ShownAnswer } from '../../src/gateway/delivery-audit.js';
import { createKafka } from '../../src/ingest/kafka/kafka-client.js';
import { kafkaTopic, partitionOf } from '../../src/ingest/kafka/routing.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Envelope } from '../../src/protocol/messages.js';
import { latestRanges, type DeliveryRecord } from '../../src/store/deliveries.js';
import { openClient, type TestClient } from '../support/clients.js';
import { quote } from '../support/events.js';
import { runBondx } from '../support/processes.js';
import { dropRun, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';
import { sleep, waitFor } from '../support/waits.js';

/**
 * With Kafka, the delivery record lands in the Kafka topic `<prefix>.deliveries` (created kept forever, a
 * user's ranges all in the partition their id hashes to): read back here with a plain consumer, every
 * record in the contract (a batch of ranges), both transports;
 * the gateway's shutdown writes each open range closed (`shutdown`); the HTTP route, `audit shown` and
 * the CLI read the record from Kafka.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the delivery record Kafka test');
const KAFKA_BROKERS = serviceUrl('KAFKA_BROKERS', 'the delivery record Kafka test');
const PARTITIONS = 2;
const RUN = `dk-${randomBytes(4).toString('hex')}`;
const ENV = { REDIS_URL, KAFKA_BROKERS, REDIS_PREFIX: RUN, KAFKA_TOPIC_PREFIX: RUN, KAFKA_GROUP_ID: `${RUN}-g`, KAFKA_PARTITIONS: String(PARTITIONS), LOG_LEVEL: 'silent' };
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const USERS = { socketio: `sio-${RUN}`, websocket: `ws-${RUN}` } as const;
const DELIVERIES = kafkaTopic(RUN, 'deliveries');
const validate = compileSchemaDir(new URL('../../schemas/audit/', import.meta.url), { batch: 'https://bondx.example/schemas/audit/delivery-batch.json' }).batch;

let kafka: Kafka;
let system: TestSystem;

beforeAll(async () => {
  kafka = createKafka(loadConfig(ENV), silentLogger, '-test');
  system = await startTestSystem({ ...ENV, AUDIT_DELIVERY_FLUSH_MS: '200' });
});

afterAll(async () => {
  await dropRun(kafka, REDIS_URL, RUN);
});

/** Every record of the deliveries topic, read with a consumer group of its own from the beginning to the current end. */
async function readTopic(): Promise<{ partition: number; key: string; value: unknown }[]> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(DELIVERIES).finally(() => admin.disconnect());
  const total = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  const out: { partition: number; key: string; value: unknown }[] = [];
  const consumer = kafka.consumer({ groupId: `${RUN}-reader-${randomBytes(3).toString('hex')}` });
  await consumer.connect();
  await consumer.subscribe({ topics: [DELIVERIES], fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out.push({ partition, key: message.key?.toString() ?? '', value: JSON.parse(message.value?.toString() ?? 'null') as unknown });
    },
  });
  await waitFor(() => out.length >= total, 20_000, () => `${out.length}/${total} records read`);
  await consumer.disconnect();
  return out;
}

const seqsOf = (records: DeliveryRecord[]) => [...new Set(records.filter((r) => r.kind !== 'replay').flatMap((r) => Array.from({ length: r.to_seq - r.from_seq + 1 }, (_, i) => r.from_seq + i)))].sort((a, b) => a - b);
const received = (client: TestClient) => client.received.filter((e: Envelope) => e.topic === TOPIC && (e.type === 'snapshot' || e.type === 'delta')).map((e) => e.seq as number);

describe('delivery record in Kafka', () => {
  it('ranges land in <prefix>.deliveries, kept forever, one partition per user; shutdown closes them; read back over HTTP and the CLI', async () => {
    const publish = async (n: number) => {
      for (let i = 0; i < n; i++) await system.publisher?.publish([quote(ISIN, 99 + i / 100, 99.6 + i / 100)], 'test');
    };
    await publish(3);
    const clients = { socketio: await openClient('socketio', system.server.url, 'market', ISIN, system.token(USERS.socketio)), websocket: await openClient('websocket', system.server.url, 'market', ISIN, system.token(USERS.websocket)) };
    await publish(12);
    await waitFor(() => Object.values(clients).every((c) => received(c).at(-1) === 15), 20_000, 'both clients at seq 15');
    const at = new Date().toISOString();
    await sleep(3);

    // Read through the gateway while the ranges are open (written at each flush, end null).
    const auditor = system.token('audit-1', 'auditor');
    await waitFor(async () => {
      const res = await fetch(`${system.server.url}/api/v1/audit/deliveries?user=${USERS.socketio}&topic=${TOPIC}`, { headers: { authorization: `Bearer ${auditor}` } });
      return (await res.text()).includes('"to_seq":15');
    }, 10_000, 'the open live range, written');
    const shown = (await (await fetch(`${system.server.url}/api/v1/audit/shown?user=${USERS.socketio}&topic=${TOPIC}&at=${at}`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as ShownAnswer;
    expect(shown).toMatchObject({ delivered: true, seq: 15, state: (await system.backends.store.snapshot(TOPIC))?.state });

    // Shutdown with both clients connected: every open range is written closed before the process ends.
    await system.close();
    const all: DeliveryRecord[] = [];
    for (const { partition, key, value } of await readTopic()) {
      expect(validate(value), describeErrors(validate.errors)).toBe(true);
      const ranges = value as DeliveryRecord[];
      expect(key).toBe(ranges[0]?.user);
      // One partition holds all of a user's ranges: the one their id hashes to, as a key would.
      for (const range of ranges) expect(partitionOf(range.user, PARTITIONS)).toBe(partition);
      all.push(...ranges);
    }
    for (const [transport, user] of Object.entries(USERS)) {
      const ranges = latestRanges(all.filter((r) => r.user === user));
      expect(ranges.map((r) => `${r.kind}:${r.end}:${r.transport}`)).toEqual([`snapshot:done:${transport}`, `live:shutdown:${transport}`]);
      expect(seqsOf(ranges)).toEqual(received(clients[transport as keyof typeof clients]));
    }

    const admin = kafka.admin();
    await admin.connect();
    const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: DELIVERIES, configNames: ['retention.ms'] }] });
    await admin.disconnect();
    expect(resources[0]?.configEntries.find((c) => c.configName === 'retention.ms')?.configValue).toBe('-1');

    const cli = runBondx(['audit', 'deliveries', '--user', USERS.websocket, '--topic', TOPIC], ENV);
    expect(await cli.exited(60_000)).toBe(0);
    const lines = cli.stdout().trim().split('\n').map((line) => JSON.parse(line) as DeliveryRecord);
    expect(lines).toEqual(latestRanges(all.filter((r) => r.user === USERS.websocket)));
  });
});
