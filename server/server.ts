/**
 * The gRPC server: services, health, reflection, metrics interceptor and HTTP side port.
 *
 *   const server = await startServer(config);   // { port, metricsPort, close(graceMs) }
 *   await server.close(30_000);                  // drain: NOT_SERVING, no new calls, cancel after grace
 */
import { Server, type ServerInterceptor } from '@grpc/grpc-js';
import { AnalysisServiceService } from '../api/generated/introspect/v1/analysis';
import { DatasetServiceService } from '../api/generated/introspect/v1/datasets';
import { ModelServiceService } from '../api/generated/introspect/v1/models';
import { IntrospectError } from '../services/errors';
import { createApp, type App, type Engines } from './app';
import type { ServerConfig } from './config';
import { startEngines } from './engines';
import { analysisHandlers } from './handlers/analysis';
import { datasetHandlers } from './handlers/datasets';
import { modelHandlers } from './handlers/models';
import { deviceReadiness } from './device-readiness';
import { Health } from './health';
import { statusName } from './errors';
import { createLogger, type Logger } from './log';
import { ServerMetrics } from './metrics';
import { startMetricsHttp, type MetricsHttp } from './metrics-http';
import { API_SERVICES } from '../api/proto-files';
import { addReflection } from './reflection';
import { tolerantDecoding } from './decode';
import { TokenSet, authInterceptor, loadTokens } from './auth';
import { HeavyStreamLimiter, registerLimiterMetrics } from './limits';
import { serverCredentials, tlsEnabled } from './tls';
import { grpcServerOptions } from './grpc-options';
import { Readiness } from './readiness';
import { loadRepository } from './repository-loader';
import { missingRoots } from './roots';

export interface StartOptions {
  log?: Logger;
  /** Engines to use instead of starting them from the config (the server then does not close them). */
  engines?: Engines;
}

export interface RunningServer {
  /** The bound gRPC port. */
  port: number;
  /** The bound metrics port, or null when disabled. */
  metricsPort: number | null;
  app: App;
  health: Health;
  /** What keeps the server NOT_SERVING (device, roots, repository, draining). */
  readiness: Readiness;
  /** Settles when the model repository (--repository) has loaded or failed; at once without one. */
  repositoryLoaded: Promise<{ ok: boolean; reason?: string }>;
  /** The bound on concurrent heavy streams. */
  heavyStreams: HeavyStreamLimiter;
  /**
   * Graceful stop: health NOT_SERVING, no new calls, running calls may finish within `graceMs`
   * (default: the config's grace period), then they are cancelled; engines are closed.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? createLogger({ level: config.logLevel });
  const metrics = new ServerMetrics();
  // Credentials and tokens first: a bad file fails the start before engines spin up.
  const creds = await serverCredentials(config);
  const tokens = config.authTokenFile !== undefined ? new TokenSet(await loadTokens(config.authTokenFile)) : undefined;
  const ownEngines = !opts.engines;
  const engines = opts.engines ?? (await startEngines(config, log, metrics));
  const app = createApp({ config, log, metrics, engines });

  const heavyStreams = new HeavyStreamLimiter(config.maxHeavyStreams ?? 2 * engines.workers, (method) =>
    log.info('call refused: heavy-stream limit reached', { method, maxHeavyStreams: config.maxHeavyStreams ?? 2 * engines.workers }),
  );
  registerLimiterMetrics(metrics.registry, heavyStreams);
  // Order: metrics sees every status (refusals too), auth answers before a heavy slot is taken.
  const interceptors: ServerInterceptor[] = [metrics.interceptor()];
  if (tokens) {
    interceptors.push(authInterceptor(tokens, (method, code) => log.info('call refused', { method, code: statusName(code) })));
  }
  interceptors.push(heavyStreams.interceptor());
  const grpcServer = new Server({ interceptors, ...grpcServerOptions(config) });
  grpcServer.addService(tolerantDecoding(ModelServiceService), modelHandlers(app));
  grpcServer.addService(tolerantDecoding(DatasetServiceService), datasetHandlers(app));
  grpcServer.addService(tolerantDecoding(AnalysisServiceService), analysisHandlers(app));
  const health = new Health(API_SERVICES);
  health.addToServer(grpcServer);
  addReflection(grpcServer);

  let port: number;
  let metricsHttp: MetricsHttp | undefined;
  try {
    port = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync(`${hostForUrl(config.host)}:${config.port}`, creds, (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    if (config.metricsPort !== null) {
      metricsHttp = await startMetricsHttp({
        metrics,
        host: config.host,
        port: config.metricsPort,
        serving: () => health.isServing(),
        notServingReason: () => health.reason(),
        log,
      });
    }
  } catch (err) {
    grpcServer.forceShutdown();
    await metricsHttp?.close();
    await app.images.close();
    if (ownEngines) await closeEngines(engines, log);
    throw err;
  }
  const statuses = app.engineStatuses();
  for (const s of statuses) metrics.deviceInfo.set({ engine: s.kind, device: s.device, backend: s.backend }, 1);
  const device = deviceReadiness(config, statuses);
  for (const s of device.fellBack) metrics.deviceFallbacks.inc({ engine: s.kind, requested: config.device });
  const readiness = new Readiness(health);
  if (!device.ok) {
    readiness.block('device', device.reason);
    log.error('not serving: the requested device is unavailable', { reason: device.reason });
  }
  const missing = await missingRoots(config);
  if (missing.length > 0) {
    readiness.block('roots', missing.join('; '));
    log.error('not serving: a root is missing', { reason: missing.join('; ') });
  }
  const repositoryLoaded =
    config.repository !== undefined ? loadRepository(app, config.repository, readiness) : Promise.resolve({ ok: true });
  readiness.update();
  log.info('server listening', {
    host: config.host,
    port,
    metricsPort: metricsHttp?.port ?? null,
    tls: tlsEnabled(config) ? (config.tlsClientCa !== undefined ? 'mutual' : 'server') : 'off',
    auth: tokens ? 'bearer' : 'off',
    maxHeavyStreams: heavyStreams.max,
    memoryBudgetBytes: app.memory.budgetBytes,
    memoryBudgetFrom: app.memory.source,
  });

  let closing: Promise<void> | undefined;
  const close = (graceMs = config.gracePeriodMs): Promise<void> => {
    closing ??= (async () => {
      readiness.drain();
      log.info('draining', { inFlight: app.rpc.calls.size, graceMs });
      const drained = new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), graceMs)));
      const outcome = await Promise.race([app.rpc.calls.idle().then(() => 'idle' as const), expired]);
      clearTimeout(timer);
      if (outcome === 'expired') {
        log.warn('grace period over: cancelling calls still running', { inFlight: app.rpc.calls.size });
        app.rpc.calls.abortAll(new IntrospectError('cancelled', 'the server is shutting down'));
      }
      // Let the last statuses go out, then close what is left (health watches, reflection streams).
      await Promise.race([drained, sleep(1000)]);
      grpcServer.forceShutdown();
      await metricsHttp?.close();
      app.models.clear();
      await app.images.close();
      if (ownEngines) await closeEngines(engines, log);
      log.info('server stopped');
    })();
    return closing;
  };

  return { port, metricsPort: metricsHttp?.port ?? null, app, health, readiness, repositoryLoaded, close, heavyStreams };
}

async function closeEngines(engines: Engines, log: Logger): Promise<void> {
  await engines.close().catch((err: unknown) => log.warn('engine close failed', { error: err instanceof Error ? err : String(err) }));
}

function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
