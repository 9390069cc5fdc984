import { ERRORS, isErrorCode, type ErrorCode } from '../../../src/protocol/errors.js';
import type { ErrorEnvelope } from '../../../src/protocol/messages.js';

export { ERRORS, type ErrorCode } from '../../../src/protocol/errors.js';

/**
 * An error the server reported (its code from the server's one catalogue, src/protocol/errors.ts), or one
 * the SDK raised itself with the code that fits (a connection that failed without a server word is
 * CONNECTION_ERROR). `details` is the server's; `closeCode` the WebSocket close code, when there was one.
 */
export class BondxError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string = ERRORS[code].message,
    readonly details: Record<string, unknown> = {},
    readonly closeCode?: number,
  ) {
    super(message);
    this.name = 'BondxError';
  }

  static fromEnvelope(env: ErrorEnvelope, closeCode?: number): BondxError {
    return new BondxError(isErrorCode(env.code) ? env.code : 'INTERNAL_ERROR', env.error, env.details, closeCode);
  }

  /** A token problem: a fresh token (getToken) may fix it. */
  get isAuth(): boolean {
    return this.code === 'AUTH_REQUIRED' || this.code === 'AUTH_INVALID' || this.code === 'TOKEN_EXPIRED';
  }
}
