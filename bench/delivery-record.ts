/**
 * The delivery record's own cost in a gateway process, apart from the fan-out (README "Audit: delivery
 * record"): `--tracks` subscriptions, each live on a room whose last broadcast moves between flushes,
 * written by the real DeliveryRecorder to a real Redis stream log (REDIS_URL) or Kafka (KAFKA_BROKERS,
 * with --sink kafka). Reports the process CPU per flush and per record, and the share of one core at the
 * default 2 s interval. The per-message part is one field per broadcast (Room.lastSeq), not measured here.
 *   REDIS_URL=redis://127.0.0.1:6390 [KAFKA_BROKERS=127.0.0.1:9092] npx tsx bench/delivery-record.ts [--tracks 250,10000,50000] [--per-user 1] [--flushes 5] [--sink redis|kafka]
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config/config.js';
import { DeliveryRecorder } from '../src/gateway/delivery-recorder.js';
import { createKafka, ensureTopics } from '../src/ingest/kafka/kafka-client.js';
import { KafkaDeliveryLog } from '../src/ingest/kafka/delivery-log.js';
import { silentLogger } from '../src/observability/logger.js';
import type { DeliveryLog } from '../src/store/deliveries.js';
import { RedisDeliveryLog } from '../src/store/redis/redis-deliveries.js';
import { deleteKeys, dropRun, serviceUrl } from '../test/support/services.js';
import { int, list, oneOf, parseOptions } from './lib/options.js';

const opts = parseOptions('npx tsx bench/delivery-record.ts', "The delivery record's CPU per flush in a gateway process.", {
  tracks: { help: 'live subscriptions (tracks) per run', default: [250, 10_000, 50_000], parse: list(int(1)) },
  perUser: { help: 'subscriptions per user (1: every one a distinct user, the most records to write apart)', default: 1, parse: int(1) },
  flushes: { help: 'flushes measured per run (after one warm-up flush)', default: 5, parse: int(1) },
  sink: { help: 'where the records go: redis or kafka', default: 'redis', parse: oneOf('redis', 'kafka') },
});

const INTERVAL_MS = 2000;
const RUN = `dlbench-${randomBytes(3).toString('hex')}`;
const REDIS_URL = serviceUrl('REDIS_URL', 'the delivery record benchmark');
const redis = new Redis(REDIS_URL);
const kafkaConfig = opts.sink === 'kafka' ? loadConfig({ KAFKA_BROKERS: serviceUrl('KAFKA_BROKERS', 'the delivery record benchmark with --sink kafka'), KAFKA_TOPIC_PREFIX: RUN, KAFKA_PARTITIONS: '6', LOG_LEVEL: 'silent' }) : undefined;
const kafka = kafkaConfig ? createKafka(kafkaConfig, silentLogger, '-bench') : undefined;
if (kafka && kafkaConfig) await ensureTopics(kafka, kafkaConfig);
const log: DeliveryLog = kafka ? new KafkaDeliveryLog(kafka, RUN, `${RUN}.readers`) : new RedisDeliveryLog(redis, RUN, 100_000);

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

console.log(`delivery record, sink ${opts.sink}, ${opts.perUser} subscription(s) per user, ${opts.flushes} flushes per run`);
console.log('| live subscriptions | records per flush | CPU per flush | CPU per record | share of one core at 2 s |');
console.log('|--:|--:|--:|--:|--:|');
for (const n of opts.tracks) {
  const recorder = new DeliveryRecorder(log, 'bench-gw', 3_600_000, silentLogger);
  const rooms = Array.from({ length: n }, (_, i) => {
    const track = recorder.track({ gateway: 'bench-gw', conn: `c${i}`, user: `u${Math.floor(i / opts.perUser)}`, transport: 'socketio', stream: 'market', device_type: 'web' }, 'prices.IN0020230085');
    const cursor = { lastSeq: 0, epoch: 'bench' };
    track.sent('snapshot', 'bench', 0, 0, new Date().toISOString());
    track.follow(cursor, 'bench', 0, new Date().toISOString());
    return cursor;
  });
  let total = 0;
  for (let f = 0; f <= opts.flushes; f++) {
    for (const cursor of rooms) cursor.lastSeq += 100;
    const before = cpuMs();
    await recorder.flush();
    if (f > 0) total += cpuMs() - before;
  }
  const perFlush = total / opts.flushes;
  console.log(`| ${n.toLocaleString('en')} | ${n.toLocaleString('en')} | ${perFlush.toFixed(1)} ms | ${((perFlush / n) * 1000).toFixed(1)} µs | ${((perFlush / INTERVAL_MS) * 100).toFixed(2)} % |`);
  await recorder.close();
}
await log.close();
if (kafka) await dropRun(kafka, REDIS_URL, RUN);
else await deleteKeys(redis, `${RUN}:*`);
redis.disconnect();
