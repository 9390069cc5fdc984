import { createPublicKey, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import jwt from 'jsonwebtoken';
import type { Config } from '../config/config.js';
import { parseTopic, streamServes, SYSTEM_ALERTS_TOPIC, type ParsedTopic, type Stream } from '../domain/topics.js';
import { ClientError } from '../protocol/errors.js';

/**
 * Roles a token may carry: `publisher` may POST events; `operator` reads system.alerts and dead letters,
 * disconnects users and replays history; `auditor` replays any topic's history (and nothing else).
 */
export const ROLES = ['publisher', 'operator', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The authenticated caller. `sub` is the user id; roles grant extra rights (see ROLES). */
export interface Principal {
  sub: string;
  roles: string[];
  /** The token's expiry, in seconds since the epoch (always present: `exp` is required). */
  exp: number;
}

type Algorithm = 'HS256' | 'RS256' | 'ES256';

export interface JwtKeys {
  algorithm: Algorithm;
  /** Verification key: the HS256 secret or the RS256/ES256 public key. */
  verifyKey: string;
  /** Signing key, when this process can issue tokens (the secret, or JWT_PRIVATE_KEY). */
  signKey?: string;
  issuer?: string;
  audience?: string;
  /** True when the key was generated at start-up (embedded demo mode). */
  generated: boolean;
}

/** Keys from configuration; with none configured, a random HS256 secret for this process (demo mode). */
export function jwtKeysFromConfig(config: Config): JwtKeys {
  const base = { issuer: config.JWT_ISSUER, audience: config.JWT_AUDIENCE };
  if (config.JWT_PUBLIC_KEY) {
    const algorithm = config.JWT_ALGORITHM ?? algorithmOfPublicKey(config.JWT_PUBLIC_KEY);
    if (algorithm === 'HS256') throw new Error('JWT_ALGORITHM=HS256 needs JWT_SECRET, not JWT_PUBLIC_KEY');
    return { ...base, algorithm, verifyKey: config.JWT_PUBLIC_KEY, signKey: config.JWT_PRIVATE_KEY, generated: false };
  }
  if (config.JWT_SECRET) {
    if (config.JWT_ALGORITHM && config.JWT_ALGORITHM !== 'HS256') throw new Error(`JWT_ALGORITHM=${config.JWT_ALGORITHM} needs JWT_PUBLIC_KEY`);
    return { ...base, algorithm: 'HS256', verifyKey: config.JWT_SECRET, signKey: config.JWT_SECRET, generated: false };
  }
  const secret = randomBytes(32).toString('base64url');
  return { ...base, algorithm: 'HS256', verifyKey: secret, signKey: secret, generated: true };
}

function algorithmOfPublicKey(pem: string): Algorithm {
  const type = createPublicKey(pem).asymmetricKeyType;
  if (type === 'rsa') return 'RS256';
  if (type === 'ec') return 'ES256';
  throw new Error(`JWT_PUBLIC_KEY: unsupported key type ${type ?? 'unknown'} (use an RSA or P-256 EC key)`);
}

/**
 * The verification key as a KeyObject, made once per key set: handed a string, jsonwebtoken first tries
 * it as a public key (a failed PEM parse and an exception) on every verify, which cost a tenth of a
 * gateway's CPU when every published HTTP request carries a token.
 */
const keyObjects = new WeakMap<JwtKeys, KeyObject>();

function verifyKeyObject(keys: JwtKeys): KeyObject {
  let key = keyObjects.get(keys);
  if (!key) {
    key = keys.algorithm === 'HS256' ? createSecretKey(Buffer.from(keys.verifyKey)) : createPublicKey(keys.verifyKey);
    keyObjects.set(keys, key);
  }
  return key;
}

/** Verifies a bearer token: algorithm pinned, `exp` required, issuer/audience checked when configured. */
export function verifyToken(keys: JwtKeys, token: string | undefined): Principal {
  if (!token) throw new ClientError('AUTH_REQUIRED');
  let claims: string | jwt.JwtPayload;
  try {
    claims = jwt.verify(token, verifyKeyObject(keys), {
      algorithms: [keys.algorithm],
      ...(keys.issuer ? { issuer: keys.issuer } : {}),
      ...(keys.audience ? { audience: keys.audience } : {}),
    });
  } catch (err) {
    throw new ClientError('AUTH_INVALID', { reason: (err as Error).message });
  }
  if (typeof claims === 'string' || typeof claims.exp !== 'number') throw new ClientError('AUTH_INVALID', { reason: 'exp claim required' });
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new ClientError('AUTH_INVALID', { reason: 'sub claim required' });
  const role: unknown = claims.role ?? claims.roles;
  const roles = Array.isArray(role) ? role.filter((r): r is string => typeof r === 'string') : typeof role === 'string' ? [role] : [];
  return { sub: claims.sub, roles, exp: claims.exp };
}

/**
 * A fresh token sent on an open connection: valid by the same rules as at connect, and for the same
 * user (a connection never changes hands). Its claims replace the old ones, expiry included.
 */
export function verifyRefresh(keys: JwtKeys, current: Principal, token: string): Principal {
  const next = verifyToken(keys, token);
  if (next.sub !== current.sub) throw new ClientError('AUTH_INVALID', { reason: 'token subject does not match the connection' });
  return next;
}

export interface TokenRequest {
  sub: string;
  /** Any string (tests issue odd ones); `bondx token` only issues ROLES. */
  role?: string;
  /** Lifetime in seconds. */
  ttl: number;
}

export function issueToken(keys: JwtKeys, req: TokenRequest): string {
  if (!keys.signKey) throw new Error('Cannot issue tokens: no signing key (set JWT_SECRET, or JWT_PRIVATE_KEY with JWT_PUBLIC_KEY)');
  return jwt.sign({ ...(req.role ? { role: req.role } : {}) }, keys.signKey, {
    algorithm: keys.algorithm,
    subject: req.sub,
    expiresIn: req.ttl,
    ...(keys.issuer ? { issuer: keys.issuer } : {}),
    ...(keys.audience ? { audience: keys.audience } : {}),
  });
}

/** The token from `Authorization: Bearer …` or the `token` query parameter (the product's two ways). */
export function tokenFromRequest(headers: IncomingHttpHeaders, url: string | undefined): string | undefined {
  const header = headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim() || undefined;
  const query = new URL(url ?? '/', 'http://localhost').searchParams.get('token');
  return query ?? undefined;
}

export function hasRole(principal: Principal, role: Role): boolean {
  return principal.roles.includes(role);
}

/**
 * Whether `principal` may follow `topic` on `stream`: the topic's syntax (ids that can not exist are
 * INVALID_TOPIC), that the stream serves it, that a user's own topic is the caller's, and the operator
 * role for system alerts. The one check for subscribes, unsubscribes and WebSocket paths alike.
 */
export function authorise(stream: Stream, principal: Principal, topic: string): ParsedTopic {
  const parsed = parseTopic(topic);
  if (!parsed) throw new ClientError('INVALID_TOPIC', { topic, reason: 'unknown topic pattern, or an id that can not exist (ISINs need their ISO 6166 check digit)' });
  if (!streamServes(stream, parsed.kind)) throw new ClientError('INVALID_TOPIC', { topic, reason: `not served on /${stream}` });
  if (parsed.owner !== undefined && parsed.owner !== principal.sub) throw new ClientError('FORBIDDEN', { topic, reason: "another user's topic" });
  if (topic === SYSTEM_ALERTS_TOPIC && !hasRole(principal, 'operator')) throw new ClientError('FORBIDDEN', { topic, reason: 'operator role required' });
  return parsed;
}
