/**
 * An engine as a request about one model sees it: every forward, activations and attribute call timed into
 * `introspect_engine_seconds{engine, operation, model}` (the model label bounded by ServerMetrics).
 */
import type { Engine } from '../services/engines/engine';
import type { ServerMetrics } from './metrics';

export function timedEngine(engine: Engine, modelName: string, metrics: ServerMetrics): Engine {
  const time = <T>(operation: string, work: () => Promise<T>): Promise<T> => metrics.timeEngine(engine.kind, operation, modelName, work);
  return {
    kind: engine.kind,
    status: () => engine.status(),
    forward: (model, input, n, opts) => time('forward', () => engine.forward(model, input, n, opts)),
    activations: (model, input, n, layers, opts) => time('activations', () => engine.activations(model, input, n, layers, opts)),
    attribute: (model, input, target, rule, opts) => time('attribute', () => engine.attribute(model, input, target, rule, opts)),
    release: (id) => engine.release(id),
    close: () => engine.close(),
  };
}
