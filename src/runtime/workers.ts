import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from '../observability/logger.js';

/**
 * `bondx gateway --workers N`: N full gateway processes on one port (node:cluster), so one host uses
 * all its cores. Each worker is an ordinary gateway on Redis (its own feeds, rooms and connections;
 * admission, cluster view and operator disconnects already meet through Redis); the primary only
 * starts, restarts and stops them. The kernel-level accept is shared, and node:cluster hands each new
 * connection to the next worker (round-robin), which suits WebSocket: a connection never moves. Socket.IO
 * long-polling does not: its requests would land on different workers, so workers serve Socket.IO over
 * WebSocket only (README, Scaling out workers).
 */

/** How many gateway workers: the option, else WS_WORKERS, else one per core. */
export function gatewayWorkers(option: number | undefined, configured: number | undefined): number {
  return option ?? configured ?? availableParallelism();
}

/** This process is one of several gateway workers (not the only gateway on its port). */
export function isGatewayWorker(): boolean {
  return cluster.isWorker;
}

/** Pause before a crashed worker is started again. */
const RESTART_DELAY_MS = 1000;
/** How long the primary waits for workers to shut down gracefully before killing them. */
const STOP_GRACE_MS = 15_000;

/**
 * Runs this same command `count` times as cluster workers and supervises them: a worker that dies
 * after it listened is restarted; one that dies before is fatal (exit 1); SIGTERM/SIGINT are passed on
 * (each worker drains its clients) and the primary exits when all have. Worker i serves /metrics on
 * PROMETHEUS_PORT + i, since one shared port would spread scrapes over workers (with 0, as in tests,
 * node:cluster gives them all one free port).
 */
export function superviseWorkers(count: number, prometheusPort: number, log: Logger): void {
  let stopping = false;
  let exitStatus = 0;
  const listened = new WeakSet<Worker>();
  const fork = (index: number): void => {
    const worker = cluster.fork({ PROMETHEUS_PORT: String(prometheusPort === 0 ? 0 : prometheusPort + index), BONDX_WORKER: String(index) });
    worker.once('listening', () => listened.add(worker));
    worker.once('exit', (code, signal) => {
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitStatus);
        return;
      }
      // One that never listened cannot start (bad configuration, busy port): restarting it would loop.
      if (!listened.has(worker)) {
        log.fatal({ worker: index, code, signal }, 'gateway worker exited before listening: stopping');
        stop(1);
        return;
      }
      log.error({ worker: index, code, signal }, 'gateway worker died: restarting it');
      setTimeout(() => fork(index), RESTART_DELAY_MS);
    });
  };
  const stop = (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    exitStatus = exitCode;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (workers.length === 0) process.exit(exitStatus);
    for (const worker of workers) worker.process.kill('SIGTERM');
    setTimeout(() => {
      for (const worker of workers) worker.process.kill('SIGKILL');
      process.exit(1);
    }, STOP_GRACE_MS).unref();
  };
  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));
  log.info({ workers: count }, 'starting gateway workers');
  for (let i = 0; i < count; i++) fork(i);
}
