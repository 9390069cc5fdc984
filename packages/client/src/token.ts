/** What the SDK reads from a JWT, unverified (the server verifies): when it expires and whose it is. */
export interface TokenClaims {
  /** Expiry, seconds since the epoch (every BondX token has one). */
  exp?: number;
  sub?: string;
}

/** The claims of a compact JWT; empty for anything that is not one. base64url via atob: browsers and Node alike. */
export function claimsOf(token: string): TokenClaims {
  const part = token.split('.')[1];
  if (!part) return {};
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const claims: unknown = JSON.parse(json);
    if (typeof claims !== 'object' || claims === null) return {};
    const { exp, sub } = claims as Record<string, unknown>;
    return { ...(typeof exp === 'number' ? { exp } : {}), ...(typeof sub === 'string' ? { sub } : {}) };
  } catch {
    return {};
  }
}
