/**
 * How a code shows on Socket.IO: a `connect_error` refusing the connection, an `error` event (and the
 * ack) answering one message, or an `error` event followed by a server disconnect.
 */
export type SocketIoForm = 'refusal' | 'reply' | 'closes';

/**
 * One entry per error code, everything a transport needs to report it (as fastify's errors.js):
 * - `message`: the default human text (`error` of the envelope);
 * - `http`: the HTTP API's status, `null` for codes only a streaming connection can get;
 * - `close`: the plain-WebSocket close code sent after the error frame. 4000-4999 are the
 *   application's and mirror the HTTP status where one fits; 1011 is left to INTERNAL_ERROR alone, so
 *   the close code by itself tells a client error from a server bug;
 * - `socketio`: the forms it takes on Socket.IO (empty: it never reaches Socket.IO).
 * Stable: never rename a code, clients switch on them. README "Protocol" documents this table
 * (test/unit/protocol-docs.test.ts checks it), and nothing else in src/ maps codes.
 */
interface ErrorSpec {
  readonly message: string;
  readonly http: number | null;
  readonly close: number;
  readonly socketio: readonly SocketIoForm[];
}

export const ERRORS = {
  AUTH_REQUIRED: { message: 'Authentication required', http: 401, close: 4401, socketio: ['refusal'] },
  AUTH_INVALID: { message: 'Invalid or expired token', http: 401, close: 4401, socketio: ['refusal', 'reply'] },
  TOKEN_EXPIRED: { message: 'Token expired: send a fresh one with refresh before exp, or reconnect with a new one', http: 401, close: 4401, socketio: ['closes'] },
  FORBIDDEN: { message: 'Not allowed to access this topic', http: 403, close: 4403, socketio: ['reply'] },
  INVALID_MESSAGE: { message: 'Invalid message', http: 400, close: 4400, socketio: ['reply'] },
  INVALID_TOPIC: { message: 'Invalid topic', http: null, close: 4404, socketio: ['reply'] },
  PAYLOAD_TOO_LARGE: { message: 'Message too large', http: 413, close: 4413, socketio: ['reply'] },
  RATE_LIMIT_EXCEEDED: { message: 'Rate limit exceeded', http: 429, close: 4429, socketio: ['reply', 'refusal'] },
  SLOW_CONSUMER: { message: 'Client too slow: outbound queue overflowed', http: null, close: 4008, socketio: ['closes'] },
  TOO_MANY_CONNECTIONS: { message: 'Too many connections', http: null, close: 4429, socketio: ['refusal'] },
  SERVER_SHUTTING_DOWN: { message: 'Server shutting down, reconnect elsewhere', http: null, close: 1012, socketio: ['closes'] },
  DISCONNECTED_BY_OPERATOR: { message: 'Disconnected by an operator', http: null, close: 4410, socketio: ['closes'] },
  // Socket.IO: engine.io's own ping timeout ends a silent connection.
  CONNECTION_ERROR: { message: 'Connection error', http: null, close: 4000, socketio: [] },
  INTERNAL_ERROR: { message: 'Internal server error', http: 500, close: 1011, socketio: ['refusal', 'reply'] },
  // HTTP API only (route and method problems, a role this process does not run).
  NOT_FOUND: { message: 'Not found', http: 404, close: 4404, socketio: [] },
  METHOD_NOT_ALLOWED: { message: 'Method not allowed', http: 405, close: 4405, socketio: [] },
  SERVICE_UNAVAILABLE: { message: 'Service unavailable', http: 503, close: 1013, socketio: [] },
  NOT_IMPLEMENTED: { message: 'Not implemented', http: 501, close: 4501, socketio: [] },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Every code, in catalogue order (metrics start a series for each). */
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}

/** The HTTP status for a code; a streaming-only one that ever reached the HTTP API would be a plain 400. */
export function httpStatusOf(code: ErrorCode): number {
  return ERRORS[code].http ?? 400;
}

/** The plain-WebSocket close code of a connection that ends with this error. */
export function closeCodeOf(code: ErrorCode): number {
  return ERRORS[code].close;
}

/** An error that is reported to a client with a stable code; anything else becomes INTERNAL_ERROR. */
export class ClientError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly details: Record<string, unknown> = {},
    message: string = ERRORS[code].message,
  ) {
    super(message);
    this.name = 'ClientError';
  }

  /** What a client is told about `err`: itself if it is a ClientError, else a bare INTERNAL_ERROR (details stay in the log). */
  static from(err: unknown): ClientError {
    return err instanceof ClientError ? err : new ClientError('INTERNAL_ERROR');
  }
}
