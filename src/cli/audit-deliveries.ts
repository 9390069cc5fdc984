import type { Config } from '../config/config.js';
import { DELIVERIES_PARAMS, parseDeliveriesRequest, parseShownRequest, SHOWN_PARAMS, shownAt, type ShownAnswer } from '../gateway/delivery-audit.js';
import { silentLogger } from '../observability/logger.js';
import { ClientError } from '../protocol/errors.js';
import { historyFor, replayKafkaOptions } from '../replay/kafka-history.js';
import { deliveryLogFor } from '../runtime/deliveries.js';
import { queryDeliveries, type DeliveryLog } from '../store/deliveries.js';
import { createRedisClient, redisTarget, type RedisClient } from '../store/redis/client.js';
import { RedisTopicStore } from '../store/redis/redis-store.js';

/**
 * `bondx audit deliveries` and `bondx audit shown` (README "Audit: delivery record"): the delivery
 * record read straight from Kafka (KAFKA_BROKERS) or Redis (REDIS_URL), history from Redis (and Kafka),
 * or both through a gateway (--server, --token). The same parsers and answer as the HTTP routes. Exit 0
 * answered, 1 a failure, 2 a bad request; one line on stderr saying why.
 */

export interface DeliveriesCliOptions {
  user?: string;
  topic?: string;
  since?: string;
  until?: string;
  at?: string;
  server?: string;
  token?: string;
}

class Usage extends Error {}

/** The record and history this process reaches directly; an in-memory npm start keeps its record in its own memory. */
async function direct<T>(cfg: Config, work: (log: DeliveryLog, store: RedisTopicStore | undefined) => Promise<T>): Promise<T> {
  const target = redisTarget(cfg);
  if (!cfg.KAFKA_BROKERS && !target) throw new Usage('reads the delivery record from Kafka (KAFKA_BROKERS) or Redis (REDIS_URL); an in-memory npm start keeps it in its memory: use --server URL --token TOKEN');
  const redis: RedisClient | undefined = target ? createRedisClient(target) : undefined;
  const log = deliveryLogFor(cfg, silentLogger, redis ? { client: redis, prefix: cfg.REDIS_PREFIX } : undefined);
  try {
    return await work(log, redis ? new RedisTopicStore(redis, { prefix: cfg.REDIS_PREFIX }) : undefined);
  } finally {
    await log.close();
    redis?.disconnect();
  }
}

async function fromServer(server: string, token: string, path: string, params: Record<string, string | undefined>): Promise<string> {
  const url = new URL(path, server);
  for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${server} answered HTTP ${res.status}: ${body.slice(0, 300)}`);
  return body;
}

async function run(command: string, opts: DeliveriesCliOptions, work: () => Promise<void>): Promise<number> {
  try {
    if (opts.server !== undefined && !opts.token) throw new Usage('--server needs --token (a token with role auditor or operator)');
    await work();
    return 0;
  } catch (err) {
    process.stderr.write(`bondx audit ${command}: ${err instanceof ClientError ? String(err.details.reason) : (err as Error).message}\n`);
    return err instanceof Usage || (err instanceof ClientError && err.code === 'INVALID_MESSAGE') ? 2 : 1;
  }
}

/** The user's ranges as NDJSON on stdout, each once (as last written), ordered by opening. */
export function deliveriesCommand(config: () => Config, opts: DeliveriesCliOptions): Promise<number> {
  return run('deliveries', opts, async () => {
    const params = { user: opts.user, topic: opts.topic, since: opts.since, until: opts.until };
    const query = parseDeliveriesRequest(params);
    if (opts.server !== undefined) {
      process.stdout.write(await fromServer(opts.server, opts.token as string, '/api/v1/audit/deliveries', pick(params, DELIVERIES_PARAMS)));
      return;
    }
    const records = await direct(config(), (log) => queryDeliveries(log, query));
    for (const record of records) process.stdout.write(`${JSON.stringify(record)}\n`);
    process.stderr.write(`${records.length} range${records.length === 1 ? '' : 's'} delivered to ${query.user}\n`);
  });
}

/** What the user had of the topic at the instant: the answer as JSON on stdout, a summary on stderr. */
export function shownCommand(config: () => Config, opts: DeliveriesCliOptions): Promise<number> {
  return run('shown', opts, async () => {
    const params = { user: opts.user, topic: opts.topic, at: opts.at };
    const request = parseShownRequest(params);
    let answer: ShownAnswer;
    if (opts.server !== undefined) answer = JSON.parse(await fromServer(opts.server, opts.token as string, '/api/v1/audit/shown', pick(params, SHOWN_PARAMS))) as ShownAnswer;
    else {
      const cfg = config();
      answer = await direct(cfg, async (log, store) => {
        if (!store) throw new Usage("reads the topic's history from Redis: set REDIS_URL (and KAFKA_BROKERS for what it no longer holds), or use --server");
        const reader = historyFor(store, cfg.KAFKA_BROKERS ? replayKafkaOptions(cfg, silentLogger) : undefined, 'auto');
        try {
          return await shownAt(log, { reader, store }, request);
        } finally {
          await reader.close();
        }
      });
    }
    process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
    process.stderr.write(
      answer.delivered
        ? `${answer.user} had ${answer.topic} at seq ${answer.seq} (epoch ${answer.epoch}), delivered ${answer.delivered_at} (${answer.range?.kind} range of connection ${answer.range?.conn})\n`
        : `${answer.user} had been sent nothing of ${answer.topic} by ${answer.at}\n`,
    );
  });
}

function pick<N extends string>(params: Partial<Record<N, string | undefined>>, names: readonly N[]): Record<string, string | undefined> {
  return Object.fromEntries(names.map((n) => [n, params[n]]));
}
