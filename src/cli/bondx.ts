#!/usr/bin/env node
import type { KeyObject } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { isRole, issueToken, jwtKeysFromConfig, ROLES, type JwtKeys } from '../gateway/auth.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createBackends, demoBanner, startSystem, type Roles } from '../runtime/system.js';
import { gatewayWorkers, isGatewayWorker, superviseWorkers } from '../runtime/workers.js';
import { parseSigningKey, rawPublicKey } from '../store/checkpoint.js';
import { redisTarget } from '../store/redis/client.js';
import type { AuditVerifyOptions } from './audit.js';
import type { DeliveriesCliOptions } from './audit-deliveries.js';
import { DEV_AUDIT_KEY_FILE, DEV_KEY_FILE, devAuditKey, devSecret, readDevSecret } from './dev-key.js';
import type { ReplayCliOptions } from './replay.js';

/** `bondx <role|tool>`: every role reads the same environment configuration (see README). */

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Stops on SIGTERM/SIGINT: stop accepting, close clients, flush, close backends. */
function onShutdown(log: Logger, close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/** With no JWT key configured, the development key (created on first use) instead of one only this process knows. */
function keysFor(cfg: Config, log: Logger): { keys: JwtKeys; devKey: boolean } {
  const configured = jwtKeysFromConfig(cfg);
  if (!configured.generated) return { keys: configured, devKey: false };
  const secret = devSecret();
  if (!secret) {
    log.warn({ file: DEV_KEY_FILE }, 'no JWT key configured and the development key can not be written: tokens are valid for this process only');
    return { keys: configured, devKey: false };
  }
  log.warn({ file: DEV_KEY_FILE }, 'no JWT key configured: using the development key (set JWT_SECRET or a key pair in production)');
  return { keys: { ...jwtKeysFromConfig({ ...cfg, JWT_SECRET: secret }), generated: true }, devKey: true };
}

/** With no AUDIT_SIGNING_KEY, the projector signs checkpoints with the development audit key (created on first use), printed at start. */
function devAuditKeyFor(cfg: Config, log: Logger, roles: Roles): KeyObject | undefined {
  if (cfg.AUDIT_SIGNING_KEY || !roles.projector) return undefined;
  const pem = devAuditKey();
  if (!pem) {
    log.warn({ file: DEV_AUDIT_KEY_FILE }, 'no AUDIT_SIGNING_KEY and the development audit key can not be written: no checkpoints are signed');
    return undefined;
  }
  log.warn({ file: DEV_AUDIT_KEY_FILE }, 'no AUDIT_SIGNING_KEY: signing audit checkpoints with the development key (set AUDIT_SIGNING_KEY in production)');
  return parseSigningKey(pem);
}

/** Refuses a command: one line on stderr, exit code 2 (as for a bad configuration). */
function refuse(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const program = new Command().name('bondx').description('BondX Stream: real-time bond market streaming');

/** Starts a process with the given roles and keeps it running until SIGTERM/SIGINT. */
async function run(roles: Roles): Promise<void> {
  const cfg = config();
  const log = createLogger(cfg.LOG_LEVEL);
  const { keys, devKey } = keysFor(cfg, log);
  const auditKey = devAuditKeyFor(cfg, log, roles);
  const system = await startSystem(cfg, log, roles, keys, auditKey).catch((err: unknown) => {
    log.fatal({ err }, 'start-up failed');
    process.stderr.write(`bondx: ${(err as Error).message}\n`);
    process.exit(1);
  });
  onShutdown(log, () => system.close());
  process.stdout.write(demoBanner(system, devKey ? DEV_KEY_FILE : undefined));
  if (auditKey) process.stdout.write(`  Development audit key: ${DEV_AUDIT_KEY_FILE} (public key, base64: ${rawPublicKey(auditKey)}); npm run bondx -- audit verify --all checks with it\n`);
}

program
  .command('all')
  .description('projector + gateway (+ simulator) in one process; in-memory unless REDIS_URL / KAFKA_BROKERS are set')
  .option('--no-simulator', 'do not run the built-in market simulator')
  .action((opts: { simulator: boolean }) => run({ projector: true, gateway: true, simulator: opts.simulator && config().SIMULATOR }));

program
  .command('projector')
  .description('consume events from Kafka (KAFKA_BROKERS) and project them into Redis (REDIS_URL or REDIS_CLUSTER_NODES)')
  .action(() => {
    const cfg = config();
    if (!cfg.KAFKA_BROKERS || !redisTarget(cfg)) refuse('bondx projector needs KAFKA_BROKERS and REDIS_URL (or REDIS_CLUSTER_NODES)');
    return run({ projector: true, gateway: false, simulator: false });
  });

program
  .command('gateway')
  .description('serve clients (HTTP + Socket.IO) from Redis (REDIS_URL or REDIS_CLUSTER_NODES)')
  .option('--workers <n>', 'gateway processes on one port (default WS_WORKERS, else one per core)', positiveInt)
  .action((opts: { workers?: number }) => {
    const cfg = config();
    if (!redisTarget(cfg)) refuse('bondx gateway needs REDIS_URL or REDIS_CLUSTER_NODES (a gateway alone has nothing to serve in memory)');
    const workers = gatewayWorkers(opts.workers, cfg.WS_WORKERS);
    if (workers > 1 && !isGatewayWorker()) return superviseWorkers(workers, cfg.PROMETHEUS_PORT, createLogger(cfg.LOG_LEVEL));
    return run({ projector: false, gateway: true, simulator: false });
  });

program
  .command('simulate')
  .description('run the market simulator alone, publishing to Kafka (KAFKA_BROKERS)')
  .action(() => run({ projector: false, gateway: false, simulator: true }));

program
  .command('produce')
  .description('publish NDJSON events (one JSON event per line) to Kafka, keyed by entity')
  .argument('[file]', 'NDJSON file; standard input when omitted or "-"')
  .option('--batch <n>', 'events per Kafka request', positiveInt, 500)
  .action(async (file: string | undefined, opts: { batch: number }) => {
    const { produceNdjson } = await import('./produce.js');
    const cfg = config();
    const code = await produceNdjson(cfg, createLogger(cfg.LOG_LEVEL), file, opts.batch);
    process.exit(code);
  });

program
  .command('dead-letters')
  .description('list dead-lettered events (newest first) from the configured store (REDIS_URL)')
  .option('--limit <n>', 'how many', positiveInt, 20)
  .action(async (opts: { limit: number }) => {
    const cfg = config();
    // Without Redis the letters live in the memory of the process that received them: an empty
    // in-memory store here would claim there are none.
    if (!redisTarget(cfg)) refuse('bondx dead-letters reads the Redis dead-letter store: set REDIS_URL (or REDIS_CLUSTER_NODES). A server without REDIS_URL (npm start) keeps them in its memory: GET /api/v1/dead-letters with an operator token.');
    const backends = await createBackends(cfg, createLogger('silent'));
    process.stdout.write(`${JSON.stringify({ count: await backends.deadLetters.count(), dead_letters: await backends.deadLetters.list(opts.limit) }, null, 2)}\n`);
    await backends.close();
  });

program
  .command('replay <topic>')
  .description("a topic's history by seq or commit time, as NDJSON or CSV: from Redis (REDIS_URL, REDIS_PREFIX) or through a gateway (--server, --token)")
  .option('--from-seq <n>', 'first seq (inclusive; default 1)')
  .option('--to-seq <n>', 'last seq (inclusive; default the head)')
  .option('--since <time>', 'commit time from (inclusive, ISO-8601)')
  .option('--until <time>', 'commit time up to (exclusive, ISO-8601)')
  .option('--at <time>', "instead of a range: the topic's state as of this instant (ISO-8601), one snapshot envelope line")
  .option('--format <format>', 'ndjson or csv', 'ndjson')
  .option('--source <source>', 'auto (Redis, and Kafka for what Redis no longer holds: needs KAFKA_BROKERS), redis or kafka (every entry rebuilt)', 'auto')
  .option('--epoch <epoch>', "an earlier epoch of the topic (after a reset): its entries as served in it, rebuilt from Kafka up to its last checkpoint")
  .option('--out <file>', 'write to a file instead of stdout')
  .option('--server <url>', "a running gateway's base URL, e.g. http://127.0.0.1:8000")
  .option('--token <token>', 'with --server: a token with role auditor or operator')
  .option('--progress', 'entries, rate and ETA on stderr even when it is not a terminal')
  .action(async (topic: string, opts: ReplayCliOptions) => {
    const { replayCommand } = await import('./replay.js');
    process.exitCode = await replayCommand(config, topic, opts);
  });

const audit = program.command('audit').description("audit tools: verify the hash chain of topic histories; what each user was sent, and had at an instant");
audit
  .command('verify')
  .description("recompute topics' hash chains over Redis history (REDIS_URL) or a gateway's replay API (--server, --token) and check them against the signed checkpoints (Kafka audit topic with KAFKA_BROKERS, else the store); exit 1 on a break")
  .argument('[topics...]', 'topics to verify')
  .option('--all', 'every topic the store holds')
  .option('--from-seq <n>', 'recompute from this seq on (the entry before it is the anchor)')
  .option('--server <url>', "a running gateway's base URL, e.g. http://127.0.0.1:8000")
  .option('--token <token>', 'with --server: a token with role auditor or operator')
  .action(async (topics: string[], opts: AuditVerifyOptions) => {
    const { auditVerifyCommand } = await import('./audit.js');
    process.exitCode = await auditVerifyCommand(config, topics, opts);
  });
audit
  .command('deliveries')
  .description('the seq ranges each gateway delivered to a user, NDJSON: from Kafka (KAFKA_BROKERS) or Redis (REDIS_URL), or a gateway (--server, --token)')
  .requiredOption('--user <id>', 'the user')
  .option('--topic <topic>', 'only this topic')
  .option('--since <time>', 'ranges still open at or after this instant (ISO-8601)')
  .option('--until <time>', 'ranges opened before this instant (ISO-8601)')
  .option('--server <url>', "a running gateway's base URL, e.g. http://127.0.0.1:8000")
  .option('--token <token>', 'with --server: a token with role auditor or operator')
  .action(async (opts: DeliveriesCliOptions) => {
    const { deliveriesCommand } = await import('./audit-deliveries.js');
    process.exitCode = await deliveriesCommand(config, opts);
  });
audit
  .command('shown')
  .description('what a user had of a topic at an instant: the last seq delivered to them by then and the state at it, JSON')
  .requiredOption('--user <id>', 'the user')
  .requiredOption('--topic <topic>', 'the topic')
  .requiredOption('--at <time>', 'the instant (ISO-8601)')
  .option('--server <url>', "a running gateway's base URL, e.g. http://127.0.0.1:8000")
  .option('--token <token>', 'with --server: a token with role auditor or operator')
  .action(async (opts: DeliveriesCliOptions) => {
    const { shownCommand } = await import('./audit-deliveries.js');
    process.exitCode = await shownCommand(config, opts);
  });

program
  .command('token')
  .description('issue a JWT from the configured key (JWT_SECRET, or JWT_PRIVATE_KEY + JWT_PUBLIC_KEY)')
  .requiredOption('--sub <user>', 'subject: the user id')
  .option('--role <role>', `role claim: ${ROLES.join(' or ')}`)
  .option('--ttl <seconds>', 'lifetime in seconds', positiveInt, 3600)
  .action((opts: { sub: string; role?: string; ttl: number }) => {
    if (opts.role !== undefined && !isRole(opts.role)) refuse(`Unknown role '${opts.role}': roles are ${ROLES.join(', ')}.`);
    const cfg = config();
    let keys = jwtKeysFromConfig(cfg);
    if (keys.generated) {
      const secret = readDevSecret();
      if (!secret) refuse(`No JWT key configured: set JWT_SECRET (HS256) or JWT_PRIVATE_KEY + JWT_PUBLIC_KEY (RS256/ES256), or run npm start once to create the development key (${DEV_KEY_FILE}).`);
      keys = jwtKeysFromConfig({ ...cfg, JWT_SECRET: secret });
      process.stderr.write(`Signed with the development key ${DEV_KEY_FILE}: valid against a server started without a configured key.\n`);
    }
    process.stdout.write(`${issueToken(keys, { sub: opts.sub, ttl: opts.ttl, ...(opts.role ? { role: opts.role } : {}) })}\n`);
  });

await program.parseAsync(process.argv);
