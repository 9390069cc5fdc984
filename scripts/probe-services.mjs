#!/usr/bin/env node
// Readiness probe used by scripts/services.sh. Uses the project's own client
// libraries (kafkajs, ioredis) so "ready" means "our code can talk to it".
//
//   node scripts/probe-services.mjs kafka <brokers> [timeoutSec] [pid]
//   node scripts/probe-services.mjs redis <url>     [timeoutSec]
//
// Retries until the service answers or timeoutSec passes, printing progress
// every 5 s on stderr. If pid is given and that process dies, gives up at once.
// Exit codes: 0 ready, 1 timed out, 2 usage, 3 watched process died.
import { Kafka, logLevel } from 'kafkajs';
import { Redis } from 'ioredis';

const [kind, target, timeoutArg = '60', pidArg] = process.argv.slice(2);
if (!kind || !target || !['kafka', 'redis'].includes(kind)) {
  console.error('usage: probe-services.mjs kafka|redis <brokers|url> [timeoutSec] [pid]');
  process.exit(2);
}
const timeoutMs = Number(timeoutArg) * 1000;
const pid = pidArg ? Number(pidArg) : undefined;
const label = kind === 'kafka' ? 'Kafka' : 'Redis';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function alive(p) {
  try {
    process.kill(p, 0);
    return true;
  } catch {
    return false;
  }
}

async function kafkaOnce() {
  const kafka = new Kafka({
    clientId: 'bondx-probe',
    brokers: target.split(','),
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.listTopics();
    // describeCluster proves the controller has registered the broker.
    const { brokers } = await admin.describeCluster();
    if (brokers.length === 0) throw new Error('no brokers registered yet');
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

async function redisOnce() {
  const redis = new Redis(target, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {}); // reported via the rejected promise below
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== 'PONG') throw new Error(`unexpected PING reply ${pong}`);
  } finally {
    redis.disconnect();
  }
}

const start = Date.now();
let nextReport = 5000;
let lastErr = 'no attempt made';
for (;;) {
  try {
    await (kind === 'kafka' ? kafkaOnce() : redisOnce());
    console.error(`${label} ready at ${target} (${((Date.now() - start) / 1000).toFixed(1)}s)`);
    process.exit(0);
  } catch (err) {
    lastErr = err instanceof Error ? err.message : String(err);
  }
  const elapsed = Date.now() - start;
  if (pid !== undefined && !alive(pid)) {
    console.error(`${label} process ${pid} exited while waiting (last error: ${lastErr})`);
    process.exit(3);
  }
  if (elapsed >= timeoutMs) {
    console.error(`${label} at ${target} not ready after ${timeoutArg}s (last error: ${lastErr})`);
    process.exit(1);
  }
  if (elapsed >= nextReport) {
    console.error(`waiting for ${label}… ${Math.round(elapsed / 1000)}s`);
    nextReport += 5000;
  }
  await sleep(500);
}
