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
import { ImageDecodePool } from '../services/images/decode-pool';
import { RequestMemory } from '../services/memory/request-memory';
import { resolveMemoryBudget } from './memory-budget';
import type { ServerConfig } from './config';
import type { Logger } from './log';
import type { ServerMetrics } from './metrics';
import { ActiveCalls, type RpcDeps } from './rpc';
import { timedEngine } from './timed-engine';

export type { Engines };

export interface App {
  config: ServerConfig;
  log: Logger;
  metrics: ServerMetrics;
  models: ModelRegistry;
  datasets: DatasetRegistry;
  engines: Engines;
  /** PNG/JPEG decoding in worker threads, with the pixel budget checked from headers first. */
  images: ImageDecodePool;
  /** The memory budget per request: estimates refused before allocating, batch sizes capped. */
  memory: RequestMemory;
  rpc: RpcDeps;
  /** Engine `kind` for calls about `model`, timed into introspect_engine_seconds by operation and model. */
  engine(kind: EngineKind, model: LoadedModel): Engine;
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
    maxInputElements: config.maxInputElements,
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
  const images = new ImageDecodePool({
    threads: config.decodeThreads,
    budget: { maxImagePixels: config.maxImagePixels, maxRequestPixels: config.maxRequestPixels },
  });
  // Image-folder data sets decode their files in the same worker threads, off the event loop.
  const datasets = new DatasetRegistry({ dataRoot: config.dataRoot, decodeImages: (list, signal) => images.pixels(list, signal) });
  const budget = resolveMemoryBudget(config);
  const app: App = {
    config,
    log,
    metrics,
    models,
    datasets,
    engines,
    images,
    memory: new RequestMemory(budget.requestBytes, budget.source),
    rpc: { log, calls: new ActiveCalls(), streamIdleMs: config.streamIdleMs },
    engine: (kind, model) => timedEngine(engines.engineFor(kind), model.name, metrics),
    engineStatuses: () => engines.statuses(),
    forward: (model, kind) => {
      const engine = app.engine(kind, model);
      return (input, n, signal) => engine.forward(model.engineModel, input, n, { signal });
    },
  };
  metrics.watchCache('models', () => {
    const st = models.stats();
    return { bytes: st.residentBytes, capacityBytes: st.cacheBytes };
  });
  metrics.memoryBudgetBytes.set(budget.requestBytes);
  return app;
}
