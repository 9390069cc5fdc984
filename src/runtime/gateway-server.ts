import { randomUUID } from 'node:crypto';
import { createServer, type Server as HttpServer } from 'node:http';
import { hostname } from 'node:os';
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { AddressInfo } from 'node:net';
import type { Server as SocketIoServer } from 'socket.io';
import type { Config } from '../config/config.js';
import type { JwtKeys } from '../gateway/auth.js';
import { Admission } from '../flow/admission.js';
import { DeliveryRecorder } from '../gateway/delivery-recorder.js';
import { Gateway } from '../gateway/gateway.js';
import { answerUnroutable, createHttpHandler, type HealthReport } from '../gateway/http-api.js';
import type { Publisher } from '../ingest/publisher.js';
import { replayKafkaOptions } from '../replay/kafka-history.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { attachSocketIo, clusterView, enginePathPrefix } from '../transports/socketio/socketio-transport.js';
import { attachWebSocket } from '../transports/websocket/ws-transport.js';
import type { DeliveryLog } from '../store/deliveries.js';
import { createRedisClient, redisTarget, type RedisClient } from '../store/redis/client.js';
import { redisKeys } from '../store/redis/keys.js';
import type { Backends } from './backends.js';
import { isGatewayWorker } from './workers.js';

export interface GatewayServer {
  gateway: Gateway;
  http: HttpServer;
  io: SocketIoServer;
  /** The compressed Socket.IO engine, at DEFLATE_PATH. */
  ioDeflate: SocketIoServer;
  /** `http://host:port` actually bound (PORT=0 picks a free port). */
  url: string;
  /** Starts the shutdown: /readyz answers 503 from now on, and every client is told to reconnect elsewhere. */
  drain(): void;
  /** True once drain() was called: the `draining` health check. */
  draining(): boolean;
  close(): Promise<void>;
}

/** HTTP + Socket.IO on one port, serving from the given backends. */
export async function startGatewayServer(opts: {
  config: Config;
  keys: JwtKeys;
  backends: Backends;
  /** Where the delivery record goes and is read from (runtime/deliveries.ts). */
  deliveries: DeliveryLog;
  publisher?: Publisher;
  log: Logger;
  metrics: Metrics;
  health: () => Promise<HealthReport>;
}): Promise<GatewayServer> {
  const { config, keys, backends, log } = opts;
  let draining = false;
  const admission = new Admission(
    { attemptsPerIpPerMinute: config.WS_CONNECT_RATE_PER_IP, attemptsPerUserPerMinute: config.WS_CONNECT_RATE_PER_USER, connectionsPerUser: config.WS_MAX_CONNECTIONS_PER_USER },
    backends.redis,
  );
  // The gateway id of its delivery ranges: the host, and a part unique to this process's run.
  const recorder = config.AUDIT_DELIVERIES ? new DeliveryRecorder(opts.deliveries, `${hostname()}/${randomUUID().slice(0, 8)}`, config.AUDIT_DELIVERY_FLUSH_MS, log) : undefined;
  const gateway = new Gateway(backends.store, backends.live, keys, log, { maxConnections: config.WS_MAX_CONNECTIONS, heartbeatIntervalS: config.WS_HEARTBEAT_INTERVAL, rateLimits: config.rateLimits, maxQueueSize: config.WS_MAX_QUEUE_SIZE, tokenGraceS: config.JWT_EXPIRY_GRACE, maxMessageBytes: config.WS_MAX_MESSAGE_BYTES }, opts.metrics, admission, recorder);
  const http = createServer(
    createHttpHandler({
      gateway,
      deadLetters: backends.deadLetters,
      deliveries: opts.deliveries,
      log,
      health: opts.health,
      // Socket.IO must attach after the HTTP handler, so the handler reaches the cluster view lazily.
      cluster: () => cluster,
      ...(opts.publisher ? { publisher: opts.publisher } : {}),
      ...(config.KAFKA_BROKERS ? { replayKafka: replayKafkaOptions(config, log) } : {}),
    }),
  );
  http.on('clientError', (err: Error & { code?: string }, socket) => answerUnroutable('malformed', err, socket));
  http.on('connect', (_req, socket) => answerUnroutable('connect', undefined, socket));
  // Two Socket.IO engines: plain (default path) and deflate (opt-in compression, e.g. mobile apps).
  const adapterClients: RedisClient[] = [];
  const adapterTarget = backends.kind === 'redis' ? redisTarget(config) : undefined;
  const engines = [false, true].map((deflate) => {
    const name = redisKeys(config.REDIS_PREFIX).socketIoAdapter(deflate ? 'deflate' : 'plain');
    const adapterRedis = adapterTarget ? createRedisClient(adapterTarget) : undefined;
    if (adapterRedis) adapterClients.push(adapterRedis);
    return attachSocketIo(http, gateway, {
      pingIntervalMs: config.WS_HEARTBEAT_INTERVAL * 1000,
      pingTimeoutMs: config.WS_CONNECTION_TIMEOUT * 1000,
      deflate,
      websocketOnly: isGatewayWorker(),
      // Gateways meet through Redis Streams for what crosses nodes; live data stays local (nsp.local). On a
      // single node or a cluster alike: one stream key (one slot), and the replies between gateways on
      // shard channels, which a cluster does not copy to every node.
      ...(adapterRedis ? { adapter: createAdapter(adapterRedis, { streamName: name, channelPrefix: name, onlyPlaintext: true, useShardedPubSub: true }) } : {}),
    });
  });
  const [io, deflated] = engines as [SocketIoServer, SocketIoServer];
  // One engine's adapter is channel enough: each gateway answers for all its sessions, every transport.
  const cluster = clusterView(io, gateway, adapterClients.length > 0);

  const websocket = attachWebSocket(http, gateway, log, {
    heartbeatIntervalS: config.WS_HEARTBEAT_INTERVAL,
    connectionTimeoutS: config.WS_CONNECTION_TIMEOUT,
    otherUpgradePaths: engines.map(enginePathPrefix),
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.PORT, config.HOST, () => resolve());
  });
  const address = http.address() as AddressInfo;
  const url = `http://${config.HOST}:${address.port}`;
  log.info({ url }, 'gateway listening');
  const drain = () => {
    draining = true;
    gateway.drain();
  };
  return {
    gateway,
    http,
    io,
    ioDeflate: deflated,
    url,
    drain,
    draining: () => draining,
    async close() {
      // Tell every client to reconnect elsewhere before the sockets go away.
      drain();
      await websocket.close();
      gateway.close();
      // Every connection has ended, so every range is closed: written now, before the log closes.
      await recorder?.close();
      for (const engine of engines) await new Promise<void>((resolve) => engine.close(() => resolve()));
      for (const client of adapterClients) client.disconnect();
    },
  };
}
