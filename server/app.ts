/**
 * What the handlers share: configuration, logger, metrics, the model and dataset registries, the
 * engines, and the RPC plumbing's dependencies. Built once per server.
 */
import type { Forward } from '../services/analysis/forward';
import { DatasetRegistry } from '../services/data/registry';
import type { Engine, EngineKind, EngineStatus } from '../services/engines/engine';
import type { Engines } from '../services/engines';
import type { LoadedModel } from '../services/models/model';
import { ModelRegistry } from '../services/models/registry';
import type { ServerConfig } from './config';
import type { Logger } from './log';
import type { ServerMetrics } from './metrics';
import { ActiveCalls, type RpcDeps } from './rpc';

export type { Engines };

export interface App {
  config: ServerConfig;
  log: Logger;
  metrics: ServerMetrics;
  models: ModelRegistry;
  datasets: DatasetRegistry;
  engines: Engines;
  rpc: RpcDeps;
  engine(kind: EngineKind): Engine;
  engineStatuses(): EngineStatus[];
  /** Logits for a batch of images of this model, timed into introspect_engine_seconds. */
  forward(model: LoadedModel, kind: EngineKind): Forward;
}

export function createApp(opts: { config: ServerConfig; log: Logger; metrics: ServerMetrics; engines: Engines }): App {
  const { config, log, metrics, engines } = opts;
  const models = new ModelRegistry({
    modelRoot: config.modelRoot,
    cacheBytes: config.cacheBytes,
    maxUploadBytes: config.maxUploadBytes,
    onLookup: (hit) => (hit ? metrics.cacheHits : metrics.cacheMisses).inc({ cache: 'models' }),
    onResidentChange: (n) => metrics.modelsLoaded.set(n),
    onEvict: (model, reason) => {
      log.info('model released from the engines', { model: model.name, sha256: model.sha256, reason });
      for (const engine of engines.set.made()) {
        engine.release(model.engineModel.id).catch((err: unknown) =>
          log.warn('engine release failed', { engine: engine.kind, model: model.name, error: err instanceof Error ? err : String(err) }),
        );
      }
    },
  });
  const datasets = new DatasetRegistry({ dataRoot: config.dataRoot });
  const app: App = {
    config,
    log,
    metrics,
    models,
    datasets,
    engines,
    rpc: { log, calls: new ActiveCalls() },
    engine: (kind) => engines.engineFor(kind),
    engineStatuses: () => engines.statuses(),
    forward: (model, kind) => {
      const engine = engines.engineFor(kind);
      return (input, n, signal) =>
        metrics.timeEngine(kind, 'forward', () => engine.forward(model.engineModel, input, n, { signal }));
    },
  };
  return app;
}
