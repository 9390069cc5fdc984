import { z } from 'zod';

/**
 * Configuration from environment variables, validated once at start-up (zod: typed parsing with
 * precise messages). Every role (`all`, `gateway`, `projector`) reads this same configuration.
 */

/** An empty variable (`PORT=`) means "not set": without this, `Number('')` would silently make it 0. */
const unsetIfEmpty = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) => z.preprocess(unsetIfEmpty, z.coerce.number().int().min(min).max(max).default(def));
/** A TCP port to listen on; 0 lets the OS pick a free one (tests). Checked here, not at listen time. */
const port = (def: number) => int(def, 0, 65_535);
const bool = (def: boolean) =>
  z.preprocess(
    unsetIfEmpty,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1' || v === 'yes'),
  );
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

export const alertThresholdsSchema = z
  .object({
    max_connection_failure_rate: z.number().min(0).max(1).default(0.05),
    max_message_drop_rate: z.number().min(0).max(1).default(0.01),
    max_p95_latency_ms: z.number().positive().default(100),
    max_queue_size: z.number().int().positive().default(1000),
    max_error_rate: z.number().min(0).max(1).default(0.02),
  })
  .strict();

export type AlertThresholds = z.infer<typeof alertThresholdsSchema>;

const bucket = (burst: number, perMinute: number) =>
  z.object({ burst: z.number().int().positive(), per_minute: z.number().positive() }).strict().default({ burst, per_minute: perMinute });

/** Client message limits per connection and stream (the product's table); override with RATE_LIMITS_JSON. */
export const rateLimitsSchema = z
  .object({
    market: bucket(1000, 100),
    auction: bucket(500, 50),
    trading: bucket(200, 20),
    risk: bucket(100, 10),
    mobile: bucket(300, 30),
  })
  .strict();

export type RateLimits = z.infer<typeof rateLimitsSchema>;

/**
 * Defaults that modules also need when built without a Config (stores in tests and benchmarks): the
 * one place their values are written. Every other default is only in the schema below.
 */
export const DEFAULTS = {
  /** History entries kept per topic. */
  HISTORY_MAX_LEN: 10_000,
  /** Recent event ids a store remembers to drop a redelivered event. */
  DEDUP_WINDOW: 100_000,
  /** Dead letters kept (newest); the total count is kept exactly. */
  DEAD_LETTERS_MAX_LEN: 10_000,
} as const;

const envSchema = z.object({
  HOST: z.string().default('127.0.0.1'),
  PORT: port(8000),
  PROMETHEUS_PORT: port(8001),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent', 'TRACE', 'DEBUG', 'INFO', 'WARN', 'WARNING', 'ERROR', 'FATAL', 'SILENT']).default('info'),

  WS_MAX_CONNECTIONS: int(1000, 1),
  /** Seconds between server heartbeats. */
  WS_HEARTBEAT_INTERVAL: int(30, 1),
  /** Seconds of client silence after which a connection is closed. */
  WS_CONNECTION_TIMEOUT: int(90, 1),
  WS_MAX_QUEUE_SIZE: int(1000, 1),
  /** Connection attempts per client IP per minute, across gateways (Redis when configured). */
  WS_CONNECT_RATE_PER_IP: int(600, 1),
  /** Connection attempts per user per minute, across gateways. */
  WS_CONNECT_RATE_PER_USER: int(300, 1),
  /** Open connections per user, across gateways. */
  WS_MAX_CONNECTIONS_PER_USER: int(50, 1),
  /** Largest client message accepted, bytes. */
  WS_MAX_MESSAGE_BYTES: int(64 * 1024, 256),
  /** `bondx gateway` worker processes on one port (node:cluster); unset: one per core (runtime/workers.ts). */
  WS_WORKERS: z.preprocess(unsetIfEmpty, z.coerce.number().int().min(1).max(1024).optional()),

  JWT_SECRET: optionalString,
  JWT_PUBLIC_KEY: optionalString,
  /** Private key (PEM) for `bondx token` with RS256/ES256. */
  JWT_PRIVATE_KEY: optionalString,
  JWT_ALGORITHM: z.enum(['HS256', 'RS256', 'ES256']).optional(),
  JWT_ISSUER: optionalString,
  JWT_AUDIENCE: optionalString,
  /** Seconds a connection may outlive its token's `exp` before it is closed with TOKEN_EXPIRED (time to send `refresh`). */
  JWT_EXPIRY_GRACE: int(5),

  REDIS_URL: optionalString,
  /**
   * Redis Cluster seed nodes `host:port,host:port,…`: the store, live feed and the rest on a cluster
   * (ioredis Cluster, which discovers the others). Instead of REDIS_URL, never with it.
   */
  REDIS_CLUSTER_NODES: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .regex(/^[^\s,:]+:\d{1,5}(,[^\s,:]+:\d{1,5})*$/, 'a comma-separated list of host:port')
      .optional(),
  ),
  /** Namespace of every Redis key and channel, so several deployments (or test runs) can share a Redis. */
  REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('bx'),
  KAFKA_BROKERS: optionalString,
  KAFKA_CLIENT_ID: z.string().default('bondx-stream'),
  KAFKA_GROUP_ID: z.string().default('bondx-projector'),
  KAFKA_TOPIC_PREFIX: z.string().default('bondx'),
  KAFKA_PARTITIONS: int(6, 1),
  /** How long the group waits for a silent projector before giving its partitions to another (ms). */
  KAFKA_SESSION_TIMEOUT_MS: int(10_000, 6000),
  /** retention.ms of the domain event topics when ensureTopics creates them: -1 keeps them forever (replays rebuild from them). */
  KAFKA_RETENTION_MS: int(-1, -1),
  /** Entries of a topic between two replay checkpoints in `<prefix>.checkpoints` (where a rebuild from Kafka starts). */
  REPLAY_CHECKPOINT_EVERY: int(1000, 1),

  HISTORY_MAX_LEN: int(DEFAULTS.HISTORY_MAX_LEN, 100),
  /** How many recent event ids the store remembers: a redelivery older than that would be applied again. */
  DEDUP_WINDOW: int(DEFAULTS.DEDUP_WINDOW, 1),
  DEAD_LETTERS_MAX_LEN: int(DEFAULTS.DEAD_LETTERS_MAX_LEN, 1),
  /** The built-in market simulator in `bondx all` (publishes to Kafka when KAFKA_BROKERS is set). */
  SIMULATOR: bool(true),
  /** Simulator events per second. */
  SIMULATOR_RATE: int(50, 1),

  ALERT_THRESHOLDS_JSON: optionalString,
  /** Per-stream client message limits, e.g. {"market":{"burst":1000,"per_minute":100}}. */
  RATE_LIMITS_JSON: optionalString,
  /** How often each process samples its metrics and evaluates the alert thresholds (ms). */
  ALERT_EVAL_INTERVAL_MS: int(5000, 10),
  /** Window the alert rates (failure, drop, error rates, p95 latency) are computed over (ms). */
  ALERT_WINDOW_MS: int(60_000, 10),
  /** Fewest observations (connection attempts, messages, deliveries) in a window before a rate or the p95 can alert. */
  ALERT_MIN_SAMPLES: int(20, 1),

  /** Ed25519 key that signs hash-chain checkpoints: PKCS#8 PEM, or base64 of the raw 32-byte key or its PKCS#8 DER; unset: the development key. */
  AUDIT_SIGNING_KEY: optionalString,
  /** What `bondx audit verify` checks signatures with: SPKI PEM, or base64 of the raw 32-byte key or its SPKI DER; unset: derived from AUDIT_SIGNING_KEY. */
  AUDIT_PUBLIC_KEY: optionalString,
  /** How often the projector signs the head of every topic that changed since its last checkpoint (ms). */
  AUDIT_CHECKPOINT_INTERVAL_MS: int(60_000, 100),
  /** The gateways' delivery record (what each user was sent, as seq ranges): on unless set false. */
  AUDIT_DELIVERIES: bool(true),
  /** How often a gateway writes its delivery ranges (ms): a gateway crash loses at most this much of the record. */
  AUDIT_DELIVERY_FLUSH_MS: int(2000, 100, 60_000),
  /** The delivery record kept per user without Kafka: the newest ranges in memory, stream entries (one per flush) in Redis; Kafka keeps it forever. */
  AUDIT_DELIVERIES_MAX_LEN: int(100_000, 100),
});

export type Env = z.infer<typeof envSchema>;

export interface Config extends Omit<Env, 'ALERT_THRESHOLDS_JSON' | 'RATE_LIMITS_JSON' | 'LOG_LEVEL'> {
  LOG_LEVEL: string;
  alertThresholds: AlertThresholds;
  rateLimits: RateLimits;
}

/** Parses an optional JSON setting against its schema; every problem names the variable (and the key). */
function jsonSetting<T>(name: string, text: string | undefined, schema: z.ZodType<T>): { value: T; problems?: never } | { problems: string[] } {
  let raw: unknown = {};
  if (text !== undefined && text.trim() !== '') {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      return { problems: [`${name}: not valid JSON (${(err as Error).message})`] };
    }
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { problems: parsed.error.issues.map((i) => `${[name, ...i.path.map(String)].join('.')}: ${i.message}`) };
  return { value: parsed.data };
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the configuration; throws a ConfigError listing every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(env);
  // The JSON settings are checked from the raw variables, so their problems are reported along with the others.
  const alertThresholds = jsonSetting('ALERT_THRESHOLDS_JSON', env.ALERT_THRESHOLDS_JSON, alertThresholdsSchema);
  const rateLimits = jsonSetting('RATE_LIMITS_JSON', env.RATE_LIMITS_JSON, rateLimitsSchema);
  const problems = [
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`)),
    ...(alertThresholds.problems ?? []),
    ...(rateLimits.problems ?? []),
  ];
  // One Redis deployment per process: a single node or a cluster, so no key is ever written to the wrong one.
  if (parsed.success && parsed.data.REDIS_URL && parsed.data.REDIS_CLUSTER_NODES) problems.push('REDIS_URL and REDIS_CLUSTER_NODES: set one, not both');
  if (!parsed.success || alertThresholds.problems || rateLimits.problems || problems.length > 0) throw new ConfigError(problems);
  const { ALERT_THRESHOLDS_JSON: _alerts, RATE_LIMITS_JSON: _limits, LOG_LEVEL, ...rest } = parsed.data;
  const level = LOG_LEVEL.toLowerCase();
  return { ...rest, LOG_LEVEL: level === 'warning' ? 'warn' : level, alertThresholds: alertThresholds.value, rateLimits: rateLimits.value };
}
