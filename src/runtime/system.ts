import type { KeyObject } from 'node:crypto';
import type { Config } from '../config/config.js';
import { SYSTEM_ALERTS_TOPIC } from '../domain/topics.js';
import { issueToken, jwtKeysFromConfig, type JwtKeys } from '../gateway/auth.js';
import { countingDeadLetters, type DeadLetterStore } from '../ingest/dead-letter.js';
import { Ingest } from '../ingest/ingest.js';
import { EventProducer } from '../ingest/kafka/event-producer.js';
import { createKafka, createProducer, ensureTopics } from '../ingest/kafka/kafka-client.js';
import { KafkaCheckpointLog } from '../ingest/kafka/audit-log.js';
import { KafkaDeadLetterStore } from '../ingest/kafka/kafka-dead-letters.js';
import { ProjectorConsumer } from '../ingest/kafka/projector-consumer.js';
import { kafkaTopic } from '../ingest/kafka/routing.js';
import { directPublisher, kafkaPublisher, type Publisher } from '../ingest/publisher.js';
import { AlertMonitor } from '../observability/alerts.js';
import type { Logger } from '../observability/logger.js';
import { assessHealth } from '../observability/health.js';
import { Metrics } from '../observability/metrics.js';
import { startMetricsServer, type MetricsServer } from '../observability/metrics-server.js';
import { Checkpointer, type CheckpointSink } from '../projector/checkpointer.js';
import { Projector } from '../projector/projector.js';
import { checkpointSigner, parseSigningKey } from '../store/checkpoint.js';
import { redisTarget } from '../store/redis/client.js';
import { MarketSimulator } from '../simulator/simulator.js';
import { memoryBackends, type Backends } from './backends.js';
import { startGatewayServer, type GatewayServer } from './gateway-server.js';
import { healthChecks, type HealthReadings } from './health.js';
import { deliveryLogFor } from './deliveries.js';
import { createRedisBackends } from './redis-backends.js';
import type { HealthReport } from '../gateway/http-api.js';

export interface Roles {
  /** Fold events into the store (from Kafka when KAFKA_BROKERS is set, else from this process's publisher). */
  projector: boolean;
  /** Serve clients: HTTP + Socket.IO. */
  gateway: boolean;
  /** Run the built-in market simulator, publishing through this process's publisher. */
  simulator: boolean;
}

/** A running process: any combination of roles on shared backends. */
export interface System {
  config: Config;
  keys: JwtKeys;
  backends: Backends;
  /** This process's Prometheus metrics (its own registry). */
  metrics: Metrics;
  /** `/metrics` on PROMETHEUS_PORT. */
  metricsServer: MetricsServer;
  /** Threshold alerts over `metrics`: health `degraded` and `system.alerts` entries. */
  alerts: AlertMonitor;
  /** How this process publishes events (to its own projector, or to Kafka); absent when it can not. */
  publisher?: Publisher;
  /** The ingest path of this process's projector (absent without the projector role). */
  ingest?: Ingest;
  consumer?: ProjectorConsumer;
  /** Signs the heads the projector commits (projector role, with a signing key). */
  checkpointer?: Checkpointer;
  server?: GatewayServer;
  simulator?: MarketSimulator;
  close(): Promise<void>;
}

/**
 * Composes a process from its roles. `bondx all` = every role; `bondx projector` and `bondx gateway`
 * split them across processes that meet in Redis (and Kafka).
 */
export async function startSystem(config: Config, log: Logger, roles: Roles, keys: JwtKeys = jwtKeysFromConfig(config), devAuditKey?: KeyObject): Promise<System> {
  const backends = await createBackends(config, log);
  const closers: (() => Promise<void>)[] = [() => backends.close()];
  const metrics = new Metrics();
  const alerts = new AlertMonitor({ metrics, thresholds: config.alertThresholds, store: backends.store, log, intervalMs: config.ALERT_EVAL_INTERVAL_MS, windowMs: config.ALERT_WINDOW_MS, minSamples: config.ALERT_MIN_SAMPLES });
  let metricsServer: MetricsServer;
  try {
    metricsServer = await startMetricsServer(metrics, { host: config.HOST, port: config.PROMETHEUS_PORT, log });
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
  closers.unshift(() => metricsServer.close());
  const system: System = { config, keys, backends, metrics, metricsServer, alerts, close: () => closeAll(closers) };
  /** This process's Kafka clients for health (absent without KAFKA_BROKERS). */
  let kafkaReadings: () => HealthReadings['kafka'] = () => undefined;
  const signingKey = config.AUDIT_SIGNING_KEY ? parseSigningKey(config.AUDIT_SIGNING_KEY) : devAuditKey;
  /** The projector's commit hook once the checkpointer exists (it needs the sink, which needs Kafka or the store). */
  const startCheckpointer = (sink: CheckpointSink) => {
    if (!signingKey) return undefined;
    // system.alerts is written by every process's alerts, not the projector: its heads are read each round.
    const checkpointer = new Checkpointer(checkpointSigner(signingKey), sink, config.AUDIT_CHECKPOINT_INTERVAL_MS, log, { topics: [SYSTEM_ALERTS_TOPIC], heads: (topics) => backends.store.states(topics) });
    checkpointer.start();
    closers.unshift(() => checkpointer.stop());
    system.checkpointer = checkpointer;
    return checkpointer.committed;
  };
  try {
    let deadLetters: DeadLetterStore = countingDeadLetters(backends.deadLetters, metrics);
    if (config.KAFKA_BROKERS) {
      const kafka = createKafka(config, log);
      await ensureTopics(kafka, config);
      const producer = new EventProducer(kafka, config.KAFKA_TOPIC_PREFIX);
      await producer.connect();
      closers.unshift(() => producer.disconnect());
      kafkaReadings = () => ({ producer: producer.status(), ...(system.consumer ? { consumer: { status: system.consumer.status(), lag: system.consumer.lag() } } : {}) });
      const dlqProducer = createProducer(kafka, false);
      await dlqProducer.connect();
      closers.unshift(() => dlqProducer.disconnect());
      deadLetters = countingDeadLetters(new KafkaDeadLetterStore(dlqProducer, kafkaTopic(config.KAFKA_TOPIC_PREFIX, 'dlq'), backends.deadLetters), metrics);
      system.publisher = kafkaPublisher(producer, deadLetters);
      if (roles.projector) {
        const auditLog = new KafkaCheckpointLog(kafka, kafkaTopic(config.KAFKA_TOPIC_PREFIX, 'audit'));
        await auditLog.connect();
        closers.unshift(() => auditLog.disconnect());
        const projector = new Projector(backends.store, log, startCheckpointer(auditLog));
        system.ingest = new Ingest(projector, deadLetters, log, metrics);
        system.consumer = new ProjectorConsumer(createKafka(config, log, '-projector'), config, system.ingest, projector, backends.store, log);
        await system.consumer.start();
        const consumer = system.consumer;
        metrics.projectorLagFrom(() => consumer.lag());
        closers.unshift(() => consumer.stop());
      }
    } else if (roles.projector) {
      const store = backends.store;
      const projector = new Projector(store, log, startCheckpointer({ append: async (checkpoints) => void (await Promise.all(checkpoints.map((cp) => store.appendAuditCheckpoint(cp)))) }));
      system.ingest = new Ingest(projector, deadLetters, log, metrics);
      system.publisher = directPublisher(system.ingest);
    }
    if (roles.gateway) {
      // Closed after the server (closers run last-added first), which writes its last ranges on close.
      const deliveries = deliveryLogFor(config, log, backends.redis);
      closers.unshift(() => deliveries.close());
      system.server = await startGatewayServer({
        config,
        keys,
        backends,
        deliveries,
        log,
        metrics,
        ...(system.publisher ? { publisher: system.publisher } : {}),
        health: async (): Promise<HealthReport> => ({
          ...assessHealth(healthChecks({ redis: await backends.health(), kafka: kafkaReadings(), alerts: alerts.check(), draining: system.server?.draining() ?? false })),
          alerts: alerts.activeAlerts(),
        }),
      });
      const server = system.server;
      closers.unshift(() => server.close());
    }
    if (roles.simulator) {
      const publisher = system.publisher;
      if (!publisher) throw new Error('The simulator needs somewhere to publish: run it with the projector role or KAFKA_BROKERS');
      system.simulator = new MarketSimulator({ publish: (event) => publisher.publish([event], 'simulator'), ratePerSecond: config.SIMULATOR_RATE, logger: log });
      system.simulator.start();
      const simulator = system.simulator;
      closers.unshift(() => simulator.stop());
    }
    alerts.start();
    closers.unshift(() => alerts.stop());
    return system;
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
}

/** The storage of a process: Redis when REDIS_URL or REDIS_CLUSTER_NODES is set, else in memory. */
export async function createBackends(config: Config, log: Logger): Promise<Backends> {
  const target = redisTarget(config);
  return target ? createRedisBackends(config, log, target) : memoryBackends(config);
}

/** Closes in order (last started first), continuing past failures. */
async function closeAll(closers: (() => Promise<void>)[]): Promise<void> {
  for (const close of closers.splice(0)) await close().catch(() => undefined);
}

/**
 * What embedded mode prints so a newcomer can open the dashboard and reach the operator features
 * straight away. `keySource`: where tokens can be signed from (`bondx token`), when not configured.
 */
export function demoBanner(system: System, keySource: string | undefined): string {
  if (!system.server) return '';
  const ttl = 12 * 3600;
  const trader = issueToken(system.keys, { sub: 'demo-trader', role: 'publisher', ttl });
  const operator = issueToken(system.keys, { sub: 'demo-operator', role: 'operator', ttl });
  const base = system.server.url.replace('127.0.0.1', 'localhost');
  const key = keySource
    ? `  Development JWT key: ${keySource} (npm run bondx -- token --sub alice --role operator signs with it)`
    : system.keys.generated
      ? '  (JWT key generated for this run; set JWT_SECRET to keep tokens valid across restarts)'
      : '';
  return [
    '',
    'BondX Stream is running.',
    `  Dashboard:   ${base}/?token=${trader}`,
    `  Health:      ${base}/api/v1/ws/health   (machines: ${base}/livez, ${base}/readyz)`,
    `  Demo tokens (12h):`,
    `    publisher (sub=demo-trader):   ${trader}`,
    `    operator  (sub=demo-operator): ${operator}`,
    key,
    '',
  ].join('\n');
}
