import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quote } from '../support/events.js';
import { runBondx } from '../support/processes.js';
import { connectRedis, deleteKeys, serviceUrl } from '../support/services.js';
import { startTestSystem, type TestSystem } from '../support/system.js';

/**
 * `bondx replay` as a user runs it: straight from Redis and through a running gateway, each giving
 * byte for byte what GET /api/v1/replay gives; failures exit non-zero with one line saying why.
 */

const REDIS_URL = serviceUrl('REDIS_URL', 'the replay CLI tests');
const PREFIX = `replay-cli-${randomBytes(4).toString('hex')}`;
const ISIN = 'IN0020230085';
const TOPIC = `prices.${ISIN}`;
const REDIS_ENV = { REDIS_URL, REDIS_PREFIX: PREFIX, LOG_LEVEL: 'silent' };

let system: TestSystem;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  system = await startTestSystem({ HISTORY_MAX_LEN: '100', REDIS_URL, REDIS_PREFIX: PREFIX });
  for (let i = 0; i < 150; i++) await system.ingest.submit(quote(ISIN, 99 + i / 1000, 99.6), 'test');
  dir = mkdtempSync(join(tmpdir(), 'bondx-replay-'));
});

afterAll(async () => {
  await system?.close();
  await deleteKeys(redis, `${PREFIX}:*`);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

/** What the HTTP API answers for the same request. */
async function overHttp(query: string): Promise<string> {
  const res = await fetch(`${system.server.url}/api/v1/replay?${query}`, { headers: { authorization: `Bearer ${system.token('cli-test', 'auditor')}` } });
  expect(res.status).toBe(200);
  return res.text();
}

describe('bondx replay', () => {
  it('from REDIS_URL into a file: the same bytes as the HTTP API, the missing parts on stderr, progress with --progress', async () => {
    const first = (await system.backends.store.readAfter(TOPIC, 0, 0)).firstSeq;
    const out = join(dir, 'replay.ndjson');
    const run = runBondx(['replay', TOPIC, '--from-seq', '1', '--to-seq', '160', '--out', out, '--progress'], REDIS_ENV, ['KAFKA_BROKERS']);
    expect(await run.exited(), run.stderr()).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(await overHttp('topic=prices.IN0020230085&from_seq=1&to_seq=160'));
    expect(run.stdout()).toBe('');
    expect(run.stderr()).toMatch(/^\d[\d,]*\/[\d,]+ entries, [\d,]+\/s, ETA \d+\.\d s$/m);
    expect(run.stderr()).toContain(`replayed ${151 - first} entries of ${TOPIC} (seqs ${first}..150, epoch `);
    expect(run.stderr()).toContain(`not in the answer: 1..${first - 1} trimmed, 151..160 beyond_head`);
  });

  it('through --server with a token, CSV by time to stdout: the same bytes as the HTTP API', async () => {
    const entries = (await system.backends.store.readAfter(TOPIC, 0, 1000)).entries;
    const since = entries[5]?.ts as string;
    const run = runBondx(['replay', TOPIC, '--since', since, '--format', 'csv', '--server', system.server.url, '--token', system.token('cli', 'operator')], { LOG_LEVEL: 'silent' }, ['REDIS_URL']);
    expect(await run.exited(), run.stderr()).toBe(0);
    const csv = run.stdout();
    expect(csv).toBe(await overHttp(`topic=${TOPIC}&since=${encodeURIComponent(since)}&format=csv`));
    expect(csv.split('\r\n')[0]).toMatch(/^seq,ts,type,epoch,event_ts,event_id,kind,l1\.bid,/);
    expect(csv.trimEnd().split('\r\n').length - 1).toBe(entries.filter((e) => e.ts >= since).length);
  });

  it.each<[string, string[], Record<string, string>, string[], number, RegExp]>([
    ['a bad range', ['--from-seq', '9', '--to-seq', '3'], REDIS_ENV, [], 2, /^bondx replay: to_seq \(3\) is before from_seq \(9\)\n$/],
    ['--server without --token', ['--server', 'http://127.0.0.1:1'], {}, [], 2, /^bondx replay: --server needs --token/],
    ['no REDIS_URL and no --server', [], {}, ['REDIS_URL'], 1, /^bondx replay: reads Redis: set REDIS_URL/],
    ['a token without the role', ['--server', 'SERVER', '--token', 'PUBLISHER'], {}, [], 1, /^bondx replay: http:\/\/127\.0\.0\.1:\d+ answered HTTP 403: FORBIDDEN role auditor or operator required\n$/],
    ['an unreachable server', ['--server', 'http://127.0.0.1:1', '--token', 'x'], {}, [], 1, /^bondx replay: connect ECONNREFUSED 127\.0\.0\.1:1\n$/],
  ])('%s: its exit code and one line on stderr', async (_name, args, env, unset, code, stderr) => {
    const resolved = args.map((a) => (a === 'SERVER' ? system.server.url : a === 'PUBLISHER' ? system.token('p', 'publisher') : a));
    const run = runBondx(['replay', TOPIC, ...resolved], { LOG_LEVEL: 'silent', ...env }, unset);
    expect(await run.exited()).toBe(code);
    expect(run.stderr()).toMatch(stderr);
    expect(run.stderr().trimEnd().split('\n')).toHaveLength(1);
  });
});
