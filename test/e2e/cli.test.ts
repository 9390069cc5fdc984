import jwt from 'jsonwebtoken';
import { afterAll, describe, expect, it } from 'vitest';
import { ROLES } from '../../src/gateway/auth.js';
import { type CliRun, runBondx } from '../support/processes.js';
import { TEST_SECRET } from '../support/system.js';

/**
 * The `bondx` command as a new user meets it: what `npm start` prints is enough to reach the operator
 * features, `bondx token` signs for that running server, and tools refuse what they can not do
 * correctly instead of answering something wrong.
 */

/** Nothing configured, as after a fresh clone (the development key may already exist from an earlier run). */
const FRESH = ['REDIS_URL', 'KAFKA_BROKERS', 'JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_PRIVATE_KEY'];

const running: CliRun[] = [];
afterAll(async () => {
  for (const run of running) {
    run.child.kill('SIGTERM');
    await run.exited();
  }
});

describe('bondx all without a configured key (npm start)', () => {
  it('prints an operator token, and `bondx token` signs with the same development key', async () => {
    const server = runBondx(['all', '--no-simulator'], { PORT: '0', PROMETHEUS_PORT: '0', LOG_LEVEL: 'warn' }, FRESH);
    running.push(server);
    const [, base] = await server.printed(/Dashboard: +(http:\/\/\S+?)\/\?token=/, 20_000);
    const [, operatorToken] = await server.printed(/operator +\(sub=demo-operator\): +(\S+)/);
    const deadLetters = (token: string) => fetch(`${base}/api/v1/dead-letters`, { headers: { authorization: `Bearer ${token}` } });
    expect((await deadLetters(operatorToken as string)).status).toBe(200);

    const issue = runBondx(['token', '--sub', 'alice', '--role', 'operator'], {}, FRESH);
    expect(await issue.exited()).toBe(0);
    expect(issue.stderr()).toContain('development key');
    expect((await deadLetters(issue.stdout().trim())).status).toBe(200);
  }, 40_000);
});

describe('bondx tools refuse what they can not do right', () => {
  it('`bondx dead-letters` without REDIS_URL refuses instead of printing an empty list', async () => {
    const run = runBondx(['dead-letters'], {}, ['REDIS_URL']);
    expect(await run.exited()).toBe(2);
    expect(run.stderr()).toMatch(/set REDIS_URL.*GET \/api\/v1\/dead-letters/);
    expect(run.stdout()).toBe('');
  }, 20_000);

  it('`bondx token` refuses an unknown role, issues a known one', async () => {
    const bad = runBondx(['token', '--sub', 'alice', '--role', 'superuser'], { JWT_SECRET: TEST_SECRET });
    expect(await bad.exited()).toBe(2);
    expect(bad.stderr()).toContain(`Unknown role 'superuser': roles are ${ROLES.join(', ')}.`);
    expect(bad.stdout()).toBe('');

    const good = runBondx(['token', '--sub', 'alice', '--role', 'publisher'], { JWT_SECRET: TEST_SECRET });
    expect(await good.exited()).toBe(0);
    expect(jwt.verify(good.stdout().trim(), TEST_SECRET)).toMatchObject({ sub: 'alice', role: 'publisher' });
  }, 20_000);
});
