import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { clusterNodes } from '../../src/store/redis/client.js';
import { waitFor } from './waits.js';

/**
 * Faults on the real test Redis Cluster (scripts/services.sh: 3 masters + 3 replicas on 127.0.0.1):
 * a manual failover, a master SIGKILLed, the node started again, and the wait for a whole cluster
 * (every slot served, every master with its replica in sync) that later tests need.
 */

const run = promisify(execFile);
const SERVICES = new URL('../../scripts/services.sh', import.meta.url).pathname;

export interface ClusterNode {
  port: number;
  role: 'master' | 'slave';
}

/** A short-lived connection to one node (not a cluster client: it talks to that node only). */
async function onNode<T>(port: number, work: (node: Redis) => Promise<T>): Promise<T> {
  const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  node.on('error', () => undefined); // a dead node refuses: the caller sees the rejection
  try {
    await node.connect();
    return await work(node);
  } finally {
    node.disconnect();
  }
}

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

export class TestCluster {
  readonly ports: number[];
  constructor(seeds: string) {
    this.ports = clusterNodes(seeds).map((n) => n.port);
  }

  /** The role of every node that answers. */
  async nodes(): Promise<ClusterNode[]> {
    const out: ClusterNode[] = [];
    for (const port of this.ports) {
      const role = await onNode(port, async (n) => infoField(await n.info('replication'), 'role')).catch(() => undefined);
      if (role === 'master' || role === 'slave') out.push({ port, role });
    }
    return out;
  }

  /** The port of the master serving a key's slot, as the first node that answers sees it (CLUSTER NODES); undefined while none does (mid-failover). */
  async masterOf(key: string): Promise<number | undefined> {
    for (const port of this.ports) {
      const found = await onNode(port, async (n) => {
        const slot = Number(await n.call('CLUSTER', 'KEYSLOT', key));
        for (const line of String(await n.call('CLUSTER', 'NODES')).split('\n')) {
          const [, address = '', flags = '', , , , , , ...slots] = line.split(' ');
          if (!flags.includes('master') || flags.includes('fail')) continue;
          const serves = slots.some((range) => {
            const [from, to = from] = range.split('-').map(Number);
            return from !== undefined && slot >= from && slot <= (to as number);
          });
          if (serves) return Number(address.slice(address.indexOf(':') + 1, address.indexOf('@')));
        }
        return undefined;
      }).catch(() => undefined);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /** The port of a replica in sync with `master`. */
  async replicaOf(master: number): Promise<number> {
    for (const { port, role } of await this.nodes()) {
      if (role !== 'slave') continue;
      const info = await onNode(port, (n) => n.info('replication'));
      if (Number(infoField(info, 'master_port')) === master && infoField(info, 'master_link_status') === 'up') return port;
    }
    throw new Error(`no replica in sync with master ${master}`);
  }

  /** `CLUSTER FAILOVER` on a replica: it takes its master's slots over (the master agrees: nothing lost), then waits for it. */
  async failover(replica: number): Promise<void> {
    await onNode(replica, (n) => n.call('CLUSTER', 'FAILOVER'));
    await waitFor(async () => (await onNode(replica, async (n) => infoField(await n.info('replication'), 'role'))) === 'master', 15_000, `node ${replica} to become master`, 100);
  }

  /** The pid of a node's redis-server. */
  async pid(port: number): Promise<number> {
    return Number(await onNode(port, async (n) => infoField(await n.info('server'), 'process_id')));
  }

  /**
   * Cuts a master off its replica: the replica frozen (SIGSTOP) so it cannot reconnect, its link closed
   * on the master's side (CLIENT KILL TYPE replica: what the kernel already holds for it, it still reads
   * later), so the writes the master acknowledges from now on reach no replica — if the master then dies,
   * the promoted replica lacks them: writes the cluster acknowledged and lost. Resolves with the thaw
   * (SIGCONT); thaw within the node timeout (2 s), or the cluster marks the replica failed too.
   */
  async cutOff(master: number): Promise<() => void> {
    const pid = await this.pid(await this.replicaOf(master));
    process.kill(pid, 'SIGSTOP');
    await onNode(master, (n) => n.call('CLIENT', 'KILL', 'TYPE', 'replica'));
    return () => process.kill(pid, 'SIGCONT');
  }

  /** SIGKILL of a node's redis-server (no shutdown, no goodbye to the cluster): what a crashed host looks like. */
  async kill(port: number): Promise<void> {
    process.kill(await this.pid(port), 'SIGKILL');
    await waitFor(() => onNode(port, (n) => n.ping()).then(() => false, () => true), 5000, `node ${port} to be gone`, 50);
  }

  /** Starts a dead node again (scripts/services.sh): it rejoins as a replica of whoever took its slots. */
  async restart(port: number): Promise<void> {
    await run('bash', [SERVICES, 'cluster-node-restart', String(port)]);
  }

  /** Every node up, cluster_state:ok on each, and every master with a replica in sync: the cluster later tests expect. */
  async waitWhole(timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        const nodes = await this.nodes();
        if (nodes.length !== this.ports.length) return false;
        for (const { port, role } of nodes) {
          const ok = await onNode(port, async (n) => {
            if (!(await n.call('CLUSTER', 'INFO'))?.toString().includes('cluster_state:ok')) return false;
            return role === 'master' || infoField(await n.info('replication'), 'master_link_status') === 'up';
          });
          if (!ok) return false;
        }
        return nodes.filter((n) => n.role === 'master').length === this.ports.length / 2;
      },
      timeoutMs,
      'the Redis Cluster to be whole again (all nodes up, cluster_state:ok, replicas in sync)',
      200,
    );
  }
}
