import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Checkpoint, SignedCheckpoint } from './topic-store.js';

/**
 * Signed checkpoints (README "Audit: hash chain"): a topic's head `{topic, epoch, seq, hash, ts}`
 * signed with Ed25519 over its RFC 8785 form. Whoever holds the public key can tell that the history up
 * to that seq is the one the signer saw: rewriting it means recomputing the chain, which no longer
 * meets the signed hash.
 */

/** DER prefixes that turn a raw 32-byte Ed25519 key into PKCS#8 (private) or SPKI (public). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const RAW_KEY_BYTES = 32;

export class AuditKeyError extends Error {}

interface KeyForm {
  variable: string;
  /** What the variable may hold, for the error. */
  forms: string;
  /** DER prefix that makes a raw 32-byte key a full DER key. */
  rawPrefix: Buffer;
  fromPem(pem: string): KeyObject;
  fromDer(der: Buffer): KeyObject;
}

const SIGNING_KEY: KeyForm = {
  variable: 'AUDIT_SIGNING_KEY',
  forms: 'an Ed25519 private key (PKCS#8 PEM, or base64 of the raw key or PKCS#8 DER)',
  rawPrefix: PKCS8_PREFIX,
  fromPem: (pem) => createPrivateKey(pem),
  fromDer: (der) => createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }),
};

const PUBLIC_KEY: KeyForm = {
  variable: 'AUDIT_PUBLIC_KEY',
  forms: 'an Ed25519 public key (SPKI PEM, or base64 of the raw key or SPKI DER)',
  rawPrefix: SPKI_PREFIX,
  fromPem: (pem) => createPublicKey(pem),
  fromDer: (der) => createPublicKey({ key: der, format: 'der', type: 'spki' }),
};

function parseKey(text: string, form: KeyForm): KeyObject {
  let key: KeyObject;
  try {
    if (text.includes('-----BEGIN')) key = form.fromPem(text);
    else {
      const der = Buffer.from(text.trim(), 'base64');
      key = form.fromDer(der.length === RAW_KEY_BYTES ? Buffer.concat([form.rawPrefix, der]) : der);
    }
  } catch (err) {
    throw new AuditKeyError(`${form.variable} is not ${form.forms}: ${(err as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(`${form.variable} is a ${key.asymmetricKeyType ?? 'symmetric'} key, not ${form.forms}`);
  return key;
}

/** `AUDIT_SIGNING_KEY`: a PKCS#8 PEM, or base64 of the raw 32-byte private key or of its PKCS#8 DER. */
export function parseSigningKey(text: string): KeyObject {
  return parseKey(text, SIGNING_KEY);
}

/** `AUDIT_PUBLIC_KEY`: an SPKI PEM, or base64 of the raw 32-byte public key or of its SPKI DER. */
export function parsePublicKey(text: string): KeyObject {
  return parseKey(text, PUBLIC_KEY);
}

/** The raw 32 public key bytes (of a public key, or the one of a private key), base64: the shortest form to hand an auditor. */
export function rawPublicKey(key: KeyObject): string {
  const spki = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
  return spki.subarray(spki.length - RAW_KEY_BYTES).toString('base64');
}

/** Which key signed: the first 16 hex digits of SHA-256 of the raw public key. */
export function keyId(key: KeyObject): string {
  return createHash('sha256').update(Buffer.from(rawPublicKey(key), 'base64')).digest('hex').slice(0, 16);
}

/** The signed bytes: the checkpoint's five fields, RFC 8785. */
function signedBytes(checkpoint: Checkpoint): Buffer {
  const { topic, epoch, seq, hash, ts } = checkpoint;
  return Buffer.from(canonicalize({ topic, epoch, seq, hash, ts }) ?? '', 'utf8');
}

export interface CheckpointSigner {
  sign(checkpoint: Checkpoint): SignedCheckpoint;
}

export function checkpointSigner(privateKey: KeyObject): CheckpointSigner {
  const id = keyId(privateKey);
  return {
    sign: (checkpoint) => {
      const { topic, epoch, seq, hash, ts } = checkpoint;
      return { topic, epoch, seq, hash, ts, signed_at: new Date().toISOString(), key_id: id, sig: sign(null, signedBytes(checkpoint), privateKey).toString('base64') };
    },
  };
}

/** Whether `publicKey` made the checkpoint's signature. */
export function signatureValid(checkpoint: SignedCheckpoint, publicKey: KeyObject): boolean {
  try {
    return verify(null, signedBytes(checkpoint), publicKey, Buffer.from(checkpoint.sig, 'base64'));
  } catch {
    return false;
  }
}

/** Checks the shape of a stored or received checkpoint. */
export function toSignedCheckpoint(value: unknown): SignedCheckpoint {
  if (typeof value !== 'object' || value === null) throw new Error('checkpoint is not an object');
  const c = value as Record<string, unknown>;
  for (const field of ['topic', 'epoch', 'hash', 'ts', 'signed_at', 'key_id', 'sig']) {
    if (typeof c[field] !== 'string') throw new Error(`checkpoint field ${field} is not a string`);
  }
  if (typeof c.seq !== 'number' || !Number.isSafeInteger(c.seq)) throw new Error('checkpoint seq is not an integer');
  return value as SignedCheckpoint;
}
