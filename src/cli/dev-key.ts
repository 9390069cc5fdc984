import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The development JWT key: with no key configured, `bondx all` (what `npm start` runs) signs and
 * verifies with the HS256 secret in this file, creating it on first use, so `bondx token` in another
 * terminal can issue tokens the running server accepts. Never used when JWT_SECRET or a key pair is set.
 */
export const DEV_KEY_FILE = fileURLToPath(new URL('../../.bondx/dev-jwt-secret', import.meta.url));

/**
 * The development audit key: with no AUDIT_SIGNING_KEY, the projector signs hash-chain checkpoints with
 * the Ed25519 private key (PKCS#8 PEM) in this file, created on first use, so `bondx audit verify` in
 * another terminal can check them. Never used when AUDIT_SIGNING_KEY is set.
 */
export const DEV_AUDIT_KEY_FILE = fileURLToPath(new URL('../../.bondx/dev-audit-key.pem', import.meta.url));

/** A development file's content, or undefined when there is none yet. */
function readDevFile(file: string): string | undefined {
  try {
    const content = readFileSync(file, 'utf8').trim();
    return content === '' ? undefined : content;
  } catch {
    return undefined;
  }
}

/** A development file's content, created (mode 0600) from `make` when missing; undefined when it can not be written (e.g. a read-only image). */
function devFile(file: string, make: () => string): string | undefined {
  const existing = readDevFile(file);
  if (existing) return existing;
  const content = make();
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${content}\n`, { mode: 0o600, flag: 'wx' });
    return content;
  } catch {
    // Created meanwhile by another process (flag wx): use that one; unwritable: none.
    return readDevFile(file);
  }
}

/** The development secret, or undefined when there is none yet. */
export function readDevSecret(): string | undefined {
  return readDevFile(DEV_KEY_FILE);
}

/** The development secret, created when missing; undefined when the file can not be written. */
export function devSecret(): string | undefined {
  return devFile(DEV_KEY_FILE, () => randomBytes(32).toString('base64url'));
}

/** The development audit key (PEM), or undefined when there is none yet. */
export function readDevAuditKey(): string | undefined {
  return readDevFile(DEV_AUDIT_KEY_FILE);
}

/** The development audit key (PEM), created when missing; undefined when the file can not be written. */
export function devAuditKey(): string | undefined {
  return devFile(DEV_AUDIT_KEY_FILE, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString().trim());
}
