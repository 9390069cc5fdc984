#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { issueToken, jwtKeysFromConfig } from '../gateway/auth.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createBackends } from '../runtime/backends.js';
import { demoBanner, startSystem, type Roles } from '../runtime/system.js';

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
  const system = await startSystem(cfg, log, roles).catch((err: unknown) => {
    log.fatal({ err }, 'start-up failed');
    process.stderr.write(`bondx: ${(err as Error).message}\n`);
    process.exit(1);
  });
  onShutdown(log, () => system.close());
  process.stdout.write(demoBanner(system));
}

program
  .command('all')
  .description('projector + gateway (+ simulator) in one process; in-memory unless REDIS_URL / KAFKA_BROKERS are set')
  .option('--no-simulator', 'do not run the built-in market simulator')
  .action((opts: { simulator: boolean }) => run({ projector: true, gateway: true, simulator: opts.simulator && config().SIMULATOR }));

program
  .command('projector')
  .description('consume events from Kafka (KAFKA_BROKERS) and project them into Redis (REDIS_URL)')
  .action(() => {
    const cfg = config();
    if (!cfg.KAFKA_BROKERS || !cfg.REDIS_URL) {
      process.stderr.write('bondx projector needs KAFKA_BROKERS and REDIS_URL\n');
      process.exit(2);
    }
    return run({ projector: true, gateway: false, simulator: false });
  });

program
  .command('gateway')
  .description('serve clients (HTTP + Socket.IO) from Redis (REDIS_URL)')
  .action(() => {
    if (!config().REDIS_URL) {
      process.stderr.write('bondx gateway needs REDIS_URL (a gateway alone has nothing to serve in memory)\n');
      process.exit(2);
    }
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
    const backends = await createBackends(cfg, createLogger('silent'));
    process.stdout.write(`${JSON.stringify({ count: await backends.deadLetters.count(), dead_letters: await backends.deadLetters.list(opts.limit) }, null, 2)}\n`);
    await backends.close();
  });

program
  .command('token')
  .description('issue a JWT from the configured key (JWT_SECRET, or JWT_PRIVATE_KEY + JWT_PUBLIC_KEY)')
  .requiredOption('--sub <user>', 'subject: the user id')
  .option('--role <role>', 'role claim, e.g. publisher or operator')
  .option('--ttl <seconds>', 'lifetime in seconds', positiveInt, 3600)
  .action((opts: { sub: string; role?: string; ttl: number }) => {
    const keys = jwtKeysFromConfig(config());
    if (keys.generated) {
      process.stderr.write('No JWT key configured: set JWT_SECRET (HS256) or JWT_PRIVATE_KEY + JWT_PUBLIC_KEY (RS256/ES256).\n');
      process.exit(2);
    }
    process.stdout.write(`${issueToken(keys, { sub: opts.sub, ttl: opts.ttl, ...(opts.role ? { role: opts.role } : {}) })}\n`);
  });

await program.parseAsync(process.argv);
