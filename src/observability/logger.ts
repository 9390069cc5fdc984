import { pino, type Logger } from 'pino';

/**
 * Structured JSON logs (pino: fast, JSON by default, child loggers carry correlation ids).
 * Modules take a `Logger` and derive children with `{ conn }`, `{ event_id }`, `{ req }` bindings.
 */
export type { Logger };

/** `level`: the configured LOG_LEVEL (its default lives in config.ts, not here). */
export function createLogger(level: string, name = 'bondx'): Logger {
  return pino({ name, level: level.toLowerCase(), base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** A logger that discards everything, for unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
