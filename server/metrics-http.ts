/**
 * The HTTP side port: `GET /metrics` (Prometheus text format) and `GET /healthz` (200 while serving,
 * 503 with the reason while not serving: draining, or a requested GPU device unavailable). Kubernetes probes use the native gRPC health check; /healthz is for humans
 * and simple load balancers.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './log';
import type { ServerMetrics } from './metrics';

export interface MetricsHttp {
  port: number;
  close(): Promise<void>;
}

export async function startMetricsHttp(opts: {
  metrics: ServerMetrics;
  host: string;
  port: number;
  serving: () => boolean;
  /** Why the server is not serving, shown by /healthz (default 'draining'). */
  notServingReason?: () => string;
  log: Logger;
}): Promise<MetricsHttp> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url === '/metrics') {
      opts.metrics.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(body),
        (err: unknown) => {
          opts.log.error('metrics collection failed', { error: err instanceof Error ? err : String(err) });
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
        },
      );
      return;
    }
    if (url === '/healthz') {
      const ok = opts.serving();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : `${opts.notServingReason?.() || 'draining'}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
