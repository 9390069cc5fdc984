import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

/**
 * A connection to the one Redis deployment of a process: a single node (REDIS_URL) or a Redis Cluster
 * (REDIS_CLUSTER_NODES). ioredis gives both the same command API; what differs is that on a cluster
 * every multi-key command, MULTI and script must stay within one hash slot (keys.ts `tag()` sees to it).
 */
export type RedisClient = Redis | Cluster;

export type RedisTarget = { url: string } | { clusterNodes: string };

/** `host:port,host:port` (REDIS_CLUSTER_NODES, validated by the config) as ioredis Cluster seed nodes. */
export function clusterNodes(list: string): { host: string; port: number }[] {
  return list.split(',').map((node) => {
    const colon = node.lastIndexOf(':');
    return { host: node.slice(0, colon), port: Number(node.slice(colon + 1)) };
  });
}

/** What a target is called in messages: the URL or the seed list. */
export function describeTarget(target: RedisTarget): string {
  return 'url' in target ? target.url : `cluster ${target.clusterNodes}`;
}

/**
 * A client for the target. On a cluster, pub/sub on shard channels gets a subscriber per shard
 * (`shardedSubscribers`), so SSUBSCRIBE follows each channel's slot to its node.
 */
export function createRedisClient(target: RedisTarget, options: RedisOptions = {}): RedisClient {
  if ('url' in target) return new Redis(target.url, options);
  const clusterOptions: ClusterOptions = { redisOptions: options, shardedSubscribers: true, lazyConnect: options.lazyConnect ?? false };
  return new Cluster(clusterNodes(target.clusterNodes), clusterOptions);
}

/** The target a configuration names (REDIS_CLUSTER_NODES or REDIS_URL); undefined without Redis. */
export function redisTarget(config: { REDIS_URL?: string | undefined; REDIS_CLUSTER_NODES?: string | undefined }): RedisTarget | undefined {
  if (config.REDIS_CLUSTER_NODES) return { clusterNodes: config.REDIS_CLUSTER_NODES };
  if (config.REDIS_URL) return { url: config.REDIS_URL };
  return undefined;
}

/** Another connection to the same deployment with the same options (e.g. a subscriber). */
export function duplicateClient(client: RedisClient): RedisClient {
  return client instanceof Cluster ? client.duplicate() : client.duplicate();
}

/**
 * Every key matching `pattern` in the deployment: SCAN on the node, or on each master of a cluster (a
 * cluster's SCAN only walks the node it is sent to), the masters as the cluster says now (after a
 * failover the client's last view may still call the promoted replica one). Each batch names the node
 * (its index among the masters) it came from: what one node holds is what it can lose together. A key
 * may come twice (SCAN's guarantee, and a slot migrating between masters mid-scan): callers dedupe.
 */
export async function* scanKeys(client: RedisClient, pattern: string): AsyncGenerator<{ node: number; keys: string[] }> {
  if (client instanceof Cluster) await new Promise<void>((resolve, reject) => client.refreshSlotsCache((err) => (err ? reject(err) : resolve())));
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  for (const [node, redis] of nodes.entries()) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT);
      cursor = next;
      if (keys.length > 0) yield { node, keys };
    } while (cursor !== '0');
  }
}

/** Keys SCAN looks at per call: enough to cross a keyspace quickly, few enough not to hold Redis up. */
const SCAN_COUNT = 1000;
