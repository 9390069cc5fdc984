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
  DISCONNECTED_BY_OPERATOR: 'Disconnected by an operator',
  CONNECTION_ERROR: 'Connection error',
  INTERNAL_ERROR: 'Internal server error',
  // HTTP API only (route and method problems, a role this process does not run).
  NOT_FOUND: 'Not found',
  METHOD_NOT_ALLOWED: 'Method not allowed',
  SERVICE_UNAVAILABLE: 'Service unavailable',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The close code of a plain-WebSocket connection that ends with this error (sent after the error
 * envelope). 4000-4999 are the application's and mirror the HTTP status where one fits; 1011 is left to
 * INTERNAL_ERROR alone, so the close code by itself tells a client error from a server bug. Total over
 * ErrorCode: a new code can not be added without one. README "Protocol" documents this table.
 */
export const CLOSE_CODES: Record<ErrorCode, number> = {
  AUTH_REQUIRED: 4401,
  AUTH_INVALID: 4401,
  TOKEN_EXPIRED: 4401,
  FORBIDDEN: 4403,
  INVALID_MESSAGE: 4400,
  INVALID_TOPIC: 4404,
  PAYLOAD_TOO_LARGE: 4413,
  RATE_LIMIT_EXCEEDED: 4429,
  SLOW_CONSUMER: 4008,
  TOO_MANY_CONNECTIONS: 4429,
  SERVER_SHUTTING_DOWN: 1012,
  DISCONNECTED_BY_OPERATOR: 4410,
  CONNECTION_ERROR: 4000,
  INTERNAL_ERROR: 1011,
  NOT_FOUND: 4404,
  METHOD_NOT_ALLOWED: 4405,
  SERVICE_UNAVAILABLE: 1013,
};

/**
 * The HTTP status of an API answer with this code. Codes only a streaming connection can get (topics,
 * connection limits, a slow consumer, a shutdown or operator disconnect, a silent connection) have none.
 */
export const HTTP_STATUS = {
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  INVALID_MESSAGE: 400,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  SERVICE_UNAVAILABLE: 503,
} as const satisfies Partial<Record<ErrorCode, number>>;

/** The HTTP status for a code; a streaming-only one that ever reached the HTTP API would be a plain 400. */
export function httpStatusOf(code: ErrorCode): number {
  return (HTTP_STATUS as Partial<Record<ErrorCode, number>>)[code] ?? 400;
}

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
