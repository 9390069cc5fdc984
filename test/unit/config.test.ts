import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';
import { memoryBackends } from '../../src/runtime/backends.js';
import { clusterNodes, redisTarget } from '../../src/store/redis/client.js';
import { runBondx } from '../support/processes.js';

/** The problems loadConfig reports for `env` (fails the test when it accepts it). */
function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    // The message lists every problem, so `bondx` can print it as it is.
    for (const p of e.problems) expect(e.message).toContain(p);
    return e.problems;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig: defaults', () => {
  it('an empty environment gives the documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8000,
      PROMETHEUS_PORT: 8001,
      LOG_LEVEL: 'info',
      WS_MAX_CONNECTIONS: 1000,
      WS_HEARTBEAT_INTERVAL: 30,
      WS_CONNECTION_TIMEOUT: 90,
      WS_MAX_QUEUE_SIZE: 1000,
      WS_MAX_CONNECTIONS_PER_USER: 50,
      WS_MAX_MESSAGE_BYTES: 65536,
      REDIS_PREFIX: 'bx',
      KAFKA_GROUP_ID: 'bondx-projector',
      KAFKA_TOPIC_PREFIX: 'bondx',
      KAFKA_PARTITIONS: 6,
      SIMULATOR: true,
      SIMULATOR_RATE: 50,
      ALERT_MIN_SAMPLES: 20,
      HISTORY_MAX_LEN: 10_000,
      DEDUP_WINDOW: 100_000,
      DEAD_LETTERS_MAX_LEN: 10_000,
    });
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.KAFKA_BROKERS).toBeUndefined();
    expect(c.JWT_SECRET).toBeUndefined();
    expect(c.alertThresholds).toEqual({ max_connection_failure_rate: 0.05, max_message_drop_rate: 0.01, max_p95_latency_ms: 100, max_queue_size: 1000, max_error_rate: 0.02 });
    expect(c.rateLimits).toEqual({
      market: { burst: 1000, per_minute: 100 },
      auction: { burst: 500, per_minute: 50 },
      trading: { burst: 200, per_minute: 20 },
      risk: { burst: 100, per_minute: 10 },
      mobile: { burst: 300, per_minute: 30 },
    });
    expect(c).not.toHaveProperty('ALERT_THRESHOLDS_JSON');
    expect(c).not.toHaveProperty('RATE_LIMITS_JSON');
  });

  it('empty variables count as unset: defaults, not 0 or errors', () => {
    const c = loadConfig({ PORT: '', WS_MAX_CONNECTIONS: ' ', SIMULATOR: '', REDIS_URL: '', KAFKA_BROKERS: '  ', JWT_SECRET: '', ALERT_THRESHOLDS_JSON: '', RATE_LIMITS_JSON: '' });
    expect(c.PORT).toBe(8000);
    expect(c.WS_MAX_CONNECTIONS).toBe(1000);
    expect(c.SIMULATOR).toBe(true);
    expect(c.REDIS_URL).toBeUndefined();
    expect(c.KAFKA_BROKERS).toBeUndefined();
    expect(c.JWT_SECRET).toBeUndefined();
    expect(c.alertThresholds.max_error_rate).toBe(0.02);
    expect(c.rateLimits.market.burst).toBe(1000);
  });
});

describe('README "Configuration" documents the defaults of loadConfig', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('### Tokens'));
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  const cells = (row: string) => row.split(' | ').map((cell) => cell.replace(/^\|\s*|\s*\|$/g, ''));
  const listed = (cell: string) => cell.split(' / ').map((part) => /^`([^`]+)`$/.exec(part)?.[1]);

  it('every default in the table is the one loadConfig applies', () => {
    const defaults: Record<string, unknown> = { ...loadConfig({}) };
    const compared = rows.flatMap((row) => {
      const [names, values] = cells(row).map(listed);
      if (!names || !values || names.length !== values.length || values.some((v) => v === undefined)) return []; // `—`, "product table", …
      return names.map((name, i) => [name, values[i], String(defaults[name as string])]);
    });
    expect(compared.length).toBeGreaterThan(20);
    expect(compared.filter(([, documented, actual]) => documented !== actual)).toEqual([]);
  });

  it('every variable loadConfig reads is in the table', () => {
    const documented = new Set(rows.flatMap((row) => [...row.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1])));
    const read = Object.keys(loadConfig({ REDIS_URL: 'x', KAFKA_BROKERS: 'x', JWT_SECRET: 'x', JWT_PUBLIC_KEY: 'x', JWT_PRIVATE_KEY: 'x', JWT_ALGORITHM: 'HS256', JWT_ISSUER: 'x', JWT_AUDIENCE: 'x' })).filter((k) => /^[A-Z]/.test(k));
    expect(read.filter((name) => !documented.has(name))).toEqual([]);
  });
});

describe('the stores take their limits from the configuration', () => {
  it('HISTORY_MAX_LEN, DEDUP_WINDOW and DEAD_LETTERS_MAX_LEN reach the in-memory backends', async () => {
    const backends = memoryBackends(loadConfig({ HISTORY_MAX_LEN: '100', DEDUP_WINDOW: '2', DEAD_LETTERS_MAX_LEN: '3' }));
    const commit = (eventId: string) => backends.store.commit({ eventId, eventTs: '', changes: [{ topic: 't', type: 'delta', payload: { kind: 'k' }, state: {} }] });
    for (let i = 0; i < 150; i++) await commit(`e${i}`);
    // Trimmed (the default keeps all 150), to at least the newest 100.
    const { firstSeq } = await backends.store.readAfter('t', 0, 1000);
    expect(firstSeq).toBeGreaterThan(1);
    expect(150 - firstSeq + 1).toBeGreaterThanOrEqual(100);
    // Only the newest 2 event ids are remembered: e147 is forgotten and applies again, e149 does not.
    expect((await commit('e149')).applied).toBe(false);
    expect((await commit('e147')).applied).toBe(true);
    for (let i = 0; i < 5; i++) await backends.deadLetters.add({ at: '', reason: 'r', source: 'test', event: i });
    expect((await backends.deadLetters.list(10)).map((d) => d.event)).toEqual([4, 3, 2]);
    await backends.close();
  });
});

describe('loadConfig: coercion', () => {
  it('numbers, booleans and log levels from their string forms', () => {
    const c = loadConfig({ PORT: '0', PROMETHEUS_PORT: '9100', WS_MAX_CONNECTIONS: '5', KAFKA_SESSION_TIMEOUT_MS: '6000', LOG_LEVEL: 'WARNING' });
    expect(c).toMatchObject({ PORT: 0, PROMETHEUS_PORT: 9100, WS_MAX_CONNECTIONS: 5, KAFKA_SESSION_TIMEOUT_MS: 6000, LOG_LEVEL: 'warn' });
    expect(loadConfig({ LOG_LEVEL: 'DEBUG' }).LOG_LEVEL).toBe('debug');
    for (const [text, value] of [['true', true], ['1', true], ['yes', true], ['false', false], ['0', false], ['no', false]] as const) {
      expect(loadConfig({ SIMULATOR: text }).SIMULATOR).toBe(value);
    }
  });

  it('JSON settings override only what they name; the rest keep their defaults', () => {
    const c = loadConfig({
      ALERT_THRESHOLDS_JSON: '{"max_p95_latency_ms":250,"max_error_rate":0.5}',
      RATE_LIMITS_JSON: '{"market":{"burst":10,"per_minute":5}}',
    });
    expect(c.alertThresholds).toMatchObject({ max_p95_latency_ms: 250, max_error_rate: 0.5, max_queue_size: 1000 });
    expect(c.rateLimits.market).toEqual({ burst: 10, per_minute: 5 });
    expect(c.rateLimits.trading).toEqual({ burst: 200, per_minute: 20 });
  });

  it('the environment is read from process.env by default', () => {
    const before = process.env.WS_MAX_QUEUE_SIZE;
    process.env.WS_MAX_QUEUE_SIZE = '77';
    try {
      expect(loadConfig().WS_MAX_QUEUE_SIZE).toBe(77);
    } finally {
      if (before === undefined) delete process.env.WS_MAX_QUEUE_SIZE;
      else process.env.WS_MAX_QUEUE_SIZE = before;
    }
  });
});

describe('loadConfig: every bad value is named, with what was given', () => {
  it.each([
    ['PORT', 'abc', /^PORT: .*number.*\(got "abc"\)$/],
    ['PORT', '1.5', /^PORT: .*int.*\(got "1\.5"\)$/],
    ['PORT', '-1', /^PORT: .*>=0.*\(got "-1"\)$/],
    ['PORT', '99999', /^PORT: .*<=65535.*\(got "99999"\)$/],
    ['PROMETHEUS_PORT', '65536', /^PROMETHEUS_PORT: .*<=65535.*\(got "65536"\)$/],
    ['ALERT_MIN_SAMPLES', '0', /^ALERT_MIN_SAMPLES: .*>=1.*\(got "0"\)$/],
    ['WS_MAX_CONNECTIONS', '0', /^WS_MAX_CONNECTIONS: .*>=1.*\(got "0"\)$/],
    ['KAFKA_SESSION_TIMEOUT_MS', '100', /^KAFKA_SESSION_TIMEOUT_MS: .*>=6000.*\(got "100"\)$/],
    ['LOG_LEVEL', 'loud', /^LOG_LEVEL: .*"info".*\(got "loud"\)$/],
    ['SIMULATOR', 'maybe', /^SIMULATOR: .*\(got "maybe"\)$/],
    ['REDIS_PREFIX', 'a:b', /^REDIS_PREFIX: .*\(got "a:b"\)$/],
    ['DEDUP_WINDOW', '0', /^DEDUP_WINDOW: .*>=1.*\(got "0"\)$/],
    ['DEAD_LETTERS_MAX_LEN', '0', /^DEAD_LETTERS_MAX_LEN: .*>=1.*\(got "0"\)$/],
    ['JWT_ALGORITHM', 'none', /^JWT_ALGORITHM: .*"HS256".*\(got "none"\)$/],
  ])('%s=%s', (name, value, expected) => {
    const found = problems({ [name]: value });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(expected);
  });

  it('ALERT_THRESHOLDS_JSON that is not JSON', () => {
    expect(problems({ ALERT_THRESHOLDS_JSON: '{max_error_rate: 1' })).toEqual([expect.stringMatching(/^ALERT_THRESHOLDS_JSON: not valid JSON \(.+\)$/)]);
  });

  it('ALERT_THRESHOLDS_JSON with an unknown key names the key', () => {
    expect(problems({ ALERT_THRESHOLDS_JSON: '{"max_eror_rate":0.1}' })).toEqual([expect.stringMatching(/^ALERT_THRESHOLDS_JSON: .*"max_eror_rate"/)]);
  });

  it('ALERT_THRESHOLDS_JSON out of range names the key', () => {
    expect(problems({ ALERT_THRESHOLDS_JSON: '{"max_error_rate":2}' })).toEqual([expect.stringMatching(/^ALERT_THRESHOLDS_JSON\.max_error_rate: .*<=1/)]);
    expect(problems({ ALERT_THRESHOLDS_JSON: '{"max_queue_size":0}' })).toEqual([expect.stringMatching(/^ALERT_THRESHOLDS_JSON\.max_queue_size: /)]);
    expect(problems({ ALERT_THRESHOLDS_JSON: '{"max_p95_latency_ms":"fast"}' })).toEqual([expect.stringMatching(/^ALERT_THRESHOLDS_JSON\.max_p95_latency_ms: .*number/)]);
  });

  it('RATE_LIMITS_JSON: not JSON, wrong shape, unknown stream, bad bucket', () => {
    expect(problems({ RATE_LIMITS_JSON: 'market=100' })).toEqual([expect.stringMatching(/^RATE_LIMITS_JSON: not valid JSON/)]);
    expect(problems({ RATE_LIMITS_JSON: '[1]' })).toEqual([expect.stringMatching(/^RATE_LIMITS_JSON: .*object/)]);
    expect(problems({ RATE_LIMITS_JSON: '{"news":{"burst":1,"per_minute":1}}' })).toEqual([expect.stringMatching(/^RATE_LIMITS_JSON: .*"news"/)]);
    const bucket = problems({ RATE_LIMITS_JSON: '{"market":{"burst":0}}' });
    expect(bucket).toEqual(expect.arrayContaining([expect.stringMatching(/^RATE_LIMITS_JSON\.market\.burst: /), expect.stringMatching(/^RATE_LIMITS_JSON\.market\.per_minute: /)]));
  });

  it('reports every problem together: variables and both JSON settings', () => {
    const found = problems({
      PORT: 'abc',
      WS_MAX_CONNECTIONS: '0',
      LOG_LEVEL: 'loud',
      ALERT_THRESHOLDS_JSON: '{',
      RATE_LIMITS_JSON: '{"mobile":{"burst":-1,"per_minute":1}}',
    });
    expect(found).toHaveLength(5);
    for (const name of ['PORT:', 'WS_MAX_CONNECTIONS:', 'LOG_LEVEL:', 'ALERT_THRESHOLDS_JSON:', 'RATE_LIMITS_JSON.mobile.burst:']) {
      expect(found.some((p) => p.startsWith(name))).toBe(true);
    }
  });
});

describe('bondx with a bad environment', () => {
  it('`bondx all` exits with code 2 and prints the problems, without starting', async () => {
    // Nothing to connect to even if it did start: a bad environment must stop it before any backend.
    const run = runBondx(['all'], { PORT: 'abc', LOG_LEVEL: 'loud' }, ['REDIS_URL', 'KAFKA_BROKERS']);
    expect(await run.exited()).toBe(2);
    expect(run.stderr()).toContain('Invalid configuration');
    expect(run.stderr()).toMatch(/PORT: .*\(got "abc"\)/);
    expect(run.stderr()).toMatch(/LOG_LEVEL: .*\(got "loud"\)/);
    expect(run.stdout()).not.toContain('BondX Stream is running');
  }, 20_000);

  it('`PORT=99999 bondx all` is refused at start-up, naming the range', async () => {
    const run = runBondx(['all'], { PORT: '99999' }, ['REDIS_URL', 'KAFKA_BROKERS']);
    expect(await run.exited()).toBe(2);
    expect(run.stderr()).toMatch(/PORT: .*<=65535.*\(got "99999"\)/);
  }, 20_000);
});

describe('loadConfig: REDIS_CLUSTER_NODES', () => {
  it('a seed list names the cluster, and the process runs on it', () => {
    const c = loadConfig({ REDIS_CLUSTER_NODES: '127.0.0.1:7101,redis-2.internal:7102' });
    expect(c.REDIS_CLUSTER_NODES).toBe('127.0.0.1:7101,redis-2.internal:7102');
    expect(redisTarget(c)).toEqual({ clusterNodes: '127.0.0.1:7101,redis-2.internal:7102' });
    expect(clusterNodes(c.REDIS_CLUSTER_NODES as string)).toEqual([
      { host: '127.0.0.1', port: 7101 },
      { host: 'redis-2.internal', port: 7102 },
    ]);
    expect(redisTarget(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6390' }))).toEqual({ url: 'redis://127.0.0.1:6390' });
    expect(redisTarget(loadConfig({}))).toBeUndefined();
  });

  it('anything but host:port pairs is refused, naming the variable', () => {
    for (const bad of ['127.0.0.1', 'redis://127.0.0.1:7101', '127.0.0.1:7101,', 'a:1 b:2']) {
      expect(problems({ REDIS_CLUSTER_NODES: bad }).join('\n')).toContain('REDIS_CLUSTER_NODES: a comma-separated list of host:port');
    }
  });

  it('is exclusive with REDIS_URL: one Redis deployment per process', () => {
    expect(problems({ REDIS_URL: 'redis://127.0.0.1:6390', REDIS_CLUSTER_NODES: '127.0.0.1:7101' })).toEqual(['REDIS_URL and REDIS_CLUSTER_NODES: set one, not both']);
  });
});
