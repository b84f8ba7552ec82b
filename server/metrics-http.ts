/**
 * The HTTP side port: `GET /metrics` (Prometheus text format), `GET /healthz` = readiness (200 while
 * serving, 503 with the reasons while not: draining, a requested GPU device unavailable, a root missing,
 * the model repository loading or failed) and `GET /livez` = liveness (200 while the process answers;
 * cheap, and independent of readiness, so a pod that is not ready is not restarted and its state lost).
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
    if (url === '/livez') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('alive\n');
      return;
    }
    if (url === '/healthz') {
      const ok = opts.serving();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : `${opts.notServingReason?.() || 'draining'}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics, /healthz or /livez\n');
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
