#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { issueToken, jwtKeysFromConfig } from '../gateway/auth.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { demoBanner, startSystem } from '../runtime/system.js';

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

program
  .command('all')
  .description('projector + gateway (+ simulator) in one process; in-memory unless REDIS_URL is set')
  .option('--no-simulator', 'do not run the built-in market simulator')
  .action(async (opts: { simulator: boolean }) => {
    const cfg = config();
    const log = createLogger(cfg.LOG_LEVEL);
    const system = await startSystem(cfg, log, { simulator: opts.simulator && cfg.SIMULATOR });
    onShutdown(log, () => system.close());
    process.stdout.write(demoBanner(system));
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
