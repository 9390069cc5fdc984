import type { Config } from '../config/config.js';
import { issueToken, jwtKeysFromConfig, type JwtKeys } from '../gateway/auth.js';
import { Ingest } from '../ingest/ingest.js';
import type { Logger } from '../observability/logger.js';
import { Projector } from '../projector/projector.js';
import { MarketSimulator } from '../simulator/simulator.js';
import { createBackends, type Backends } from './backends.js';
import { startGatewayServer, type GatewayServer } from './gateway-server.js';

/** A running single-process system: projector + gateway (+ simulator) on shared backends. */
export interface System {
  config: Config;
  keys: JwtKeys;
  backends: Backends;
  ingest: Ingest;
  server: GatewayServer;
  simulator?: MarketSimulator;
  close(): Promise<void>;
}

export async function startSystem(config: Config, log: Logger, opts: { simulator?: boolean; keys?: JwtKeys } = {}): Promise<System> {
  const keys = opts.keys ?? jwtKeysFromConfig(config);
  const backends = await createBackends(config, log);
  const projector = new Projector(backends.store, log);
  const ingest = new Ingest(projector, backends.deadLetters, log);
  const server = await startGatewayServer({ config, keys, backends, ingest, log });
  const simulatorOn = opts.simulator ?? config.SIMULATOR;
  const simulator = simulatorOn
    ? new MarketSimulator({ publish: (event) => ingest.submit(event, 'simulator'), ratePerSecond: config.SIMULATOR_RATE, logger: log })
    : undefined;
  simulator?.start();
  return {
    config,
    keys,
    backends,
    ingest,
    server,
    ...(simulator ? { simulator } : {}),
    async close() {
      await simulator?.stop();
      await server.close();
      await backends.close();
    },
  };
}

/** What embedded mode prints so a newcomer can open the dashboard straight away. */
export function demoBanner(system: System): string {
  const token = issueToken(system.keys, { sub: 'demo-trader', role: 'publisher', ttl: 12 * 3600 });
  const base = system.server.url.replace('127.0.0.1', 'localhost');
  return [
    '',
    'BondX Stream is running.',
    `  Dashboard:   ${base}/?token=${token}`,
    `  Health:      ${base}/api/v1/ws/health`,
    `  Demo token (sub=demo-trader, role=publisher, 12h):`,
    `    ${token}`,
    system.keys.generated ? '  (JWT key generated for this run; set JWT_SECRET to keep tokens valid across restarts)' : '',
    '',
  ].join('\n');
}
