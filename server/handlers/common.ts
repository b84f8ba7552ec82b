/** Lookups most handlers start with: the model (and the engine to run it on), the dataset. */
import type { Engine as EngineEnum } from '../../api/generated/introspect/v1/common';
import type { Forward } from '../../services/analysis/forward';
import type { Dataset } from '../../services/data/dataset';
import type { Engine, EngineKind } from '../../services/engines/engine';
import type { LoadedModel } from '../../services/models/model';
import type { App } from '../app';
import { engineFromWire, requireName } from '../convert';

export interface ModelContext {
  model: LoadedModel;
  kind: EngineKind;
  engine: Engine;
  /** Logits for a batch of the model's input, on that engine (timed into the metrics). */
  forward: Forward;
}

/** The named model (unknown → NOT_FOUND) and the requested engine (unset → the server's default). */
export async function modelContext(app: App, name: string, engine: EngineEnum, field = 'model'): Promise<ModelContext> {
  const model = await app.models.get(requireName(name, field));
  const kind = engineFromWire(engine, app.config.defaultEngine);
  return { model, kind, engine: app.engine(kind), forward: app.forward(model, kind) };
}

/** The named dataset (unknown → NOT_FOUND). */
export function datasetNamed(app: App, name: string, field = 'dataset'): Dataset {
  return app.datasets.get(requireName(name, field));
}
