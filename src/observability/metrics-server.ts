import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

export interface MetricsServer {
  /** `http://host:port` actually bound (PROMETHEUS_PORT=0 picks a free port); scrape `${url}/metrics`. */
  url: string;
  close(): Promise<void>;
}

/**
 * Prometheus scrape endpoint of one process (every role has its own, on PROMETHEUS_PORT): a separate
 * port from the public API so it can stay on an internal network.
 */
export async function startMetricsServer(metrics: Metrics, opts: { host: string; port: number; log: Logger }): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: scrape /metrics\n');
      return;
    }
    metrics.text().then(
      (body) => res.writeHead(200, { 'content-type': metrics.contentType }).end(body),
      (err: unknown) => {
        opts.log.error({ err }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus' scrape interval: reuse connections
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${opts.host}:${address.port}`;
  opts.log.info({ url: `${url}/metrics` }, 'metrics listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
