import { generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import { issueToken, verifyToken, type JwtKeys } from '../../src/gateway/auth.js';

/** Token verification with each kind of key (the key is turned into a KeyObject once per key set). */

const hs: JwtKeys = { algorithm: 'HS256', verifyKey: 'unit-secret-with-enough-entropy-0123456789', signKey: 'unit-secret-with-enough-entropy-0123456789', generated: false };
const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const rs: JwtKeys = { algorithm: 'RS256', verifyKey: pair.publicKey, signKey: pair.privateKey, generated: false };

const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
};

describe('verifyToken', () => {
  it('accepts tokens of its own key, again and again (HS256 and RS256)', () => {
    for (const keys of [hs, rs]) {
      const token = issueToken(keys, { sub: 'alice', ttl: 60, role: 'publisher' });
      for (let i = 0; i < 3; i++) expect(verifyToken(keys, token)).toMatchObject({ sub: 'alice', roles: ['publisher'] });
    }
  });

  it('refuses another key, and an HS256 token signed with the RSA public key (algorithm confusion)', () => {
    const other: JwtKeys = { ...hs, verifyKey: 'another-secret-with-enough-entropy-012345', signKey: 'another-secret-with-enough-entropy-012345' };
    expect(codeOf(() => verifyToken(hs, issueToken(other, { sub: 'mallory', ttl: 60 })))).toBe('AUTH_INVALID');
    const forged = jwt.sign({ sub: 'mallory', exp: Math.floor(Date.now() / 1000) + 60 }, pair.publicKey, { algorithm: 'HS256' });
    expect(codeOf(() => verifyToken(rs, forged))).toBe('AUTH_INVALID');
    expect(codeOf(() => verifyToken(hs, undefined))).toBe('AUTH_REQUIRED');
  });
});
