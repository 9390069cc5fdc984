/** Stable error codes clients can switch on. Never rename one: clients depend on them. */
export const ERROR_CODES = {
  AUTH_REQUIRED: 'Authentication required',
  AUTH_INVALID: 'Invalid or expired token',
  TOKEN_EXPIRED: 'Token expired: send a fresh one with refresh before exp, or reconnect with a new one',
  FORBIDDEN: 'Not allowed to access this topic',
  INVALID_MESSAGE: 'Invalid message',
  INVALID_TOPIC: 'Invalid topic',
  PAYLOAD_TOO_LARGE: 'Message too large',
  RATE_LIMIT_EXCEEDED: 'Rate limit exceeded',
  SLOW_CONSUMER: 'Client too slow: outbound queue overflowed',
  TOO_MANY_CONNECTIONS: 'Too many connections',
  SERVER_SHUTTING_DOWN: 'Server shutting down, reconnect elsewhere',
  CONNECTION_ERROR: 'Connection error',
  INTERNAL_ERROR: 'Internal server error',
  // HTTP API only (route and method problems, a role this process does not run).
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  SERVICE_UNAVAILABLE: 'Service unavailable',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error that is reported to a client with a stable code; anything else becomes INTERNAL_ERROR. */
export class ClientError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly details: Record<string, unknown> = {},
    message: string = ERROR_CODES[code],
  ) {
    super(message);
    this.name = 'ClientError';
  }
}
