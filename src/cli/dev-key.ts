import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The development JWT key: with no key configured, `bondx all` (what `npm start` runs) signs and
 * verifies with the HS256 secret in this file, creating it on first use, so `bondx token` in another
 * terminal can issue tokens the running server accepts. Never used when JWT_SECRET or a key pair is set.
 */
export const DEV_KEY_FILE = fileURLToPath(new URL('../../.bondx/dev-jwt-secret', import.meta.url));

/** The development secret, or undefined when there is none yet. */
export function readDevSecret(): string | undefined {
  try {
    const secret = readFileSync(DEV_KEY_FILE, 'utf8').trim();
    return secret === '' ? undefined : secret;
  } catch {
    return undefined;
  }
}

/** The development secret, created (mode 0600) when missing; undefined when the file can not be written (e.g. a read-only image). */
export function devSecret(): string | undefined {
  const existing = readDevSecret();
  if (existing) return existing;
  const secret = randomBytes(32).toString('base64url');
  try {
    mkdirSync(dirname(DEV_KEY_FILE), { recursive: true });
    writeFileSync(DEV_KEY_FILE, `${secret}\n`, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch {
    // Created meanwhile by another process (flag wx): use that one; unwritable: none.
    return readDevSecret();
  }
}
