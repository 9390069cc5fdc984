/** What the SDK reads from a JWT, unverified (the server verifies): when it expires, whose it is, its roles. */
export interface TokenClaims {
  /** Expiry, seconds since the epoch (every BondX token has one). */
  exp?: number;
  sub?: string;
  /** `role` or `roles`, as the server reads them (src/gateway/auth.ts): what an application may offer, e.g. system alerts to operators. */
  roles: string[];
}

/** The claims of a compact JWT; empty for anything that is not one. base64url via atob: browsers and Node alike. */
export function claimsOf(token: string): TokenClaims {
  const part = token.split('.')[1];
  if (!part) return { roles: [] };
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const claims: unknown = JSON.parse(json);
    if (typeof claims !== 'object' || claims === null) return { roles: [] };
    const { exp, sub, role, roles } = claims as Record<string, unknown>;
    const granted: unknown = role ?? roles;
    return {
      ...(typeof exp === 'number' ? { exp } : {}),
      ...(typeof sub === 'string' ? { sub } : {}),
      roles: Array.isArray(granted) ? granted.filter((r): r is string => typeof r === 'string') : typeof granted === 'string' ? [granted] : [],
    };
  } catch {
    return { roles: [] };
  }
}
