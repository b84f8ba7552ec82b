/** Lookups most handlers start with: the model (and the engine to run it on), the dataset. */
import type { Engine as EngineEnum } from '../../api/generated/introspect/v1/common';
import type { Dataset } from '../../services/data/dataset';
import type { ModelContext } from '../../services/jobs/context';
import type { App } from '../app';
import { engineFromWire, requireName } from '../convert';

export type { ModelContext };

/** The named model (unknown → NOT_FOUND) and the requested engine (unset → the server's default). */
export async function modelContext(app: App, name: string, engine: EngineEnum, field = 'model'): Promise<ModelContext> {
  const model = await app.models.get(requireName(name, field));
  const kind = engineFromWire(engine, app.config.defaultEngine);
  return { model, kind, engine: app.engine(kind, model), forward: app.forward(model, kind) };
}

/** The named dataset (unknown → NOT_FOUND). */
export function datasetNamed(app: App, name: string, field = 'dataset'): Dataset {
  return app.datasets.get(requireName(name, field));
}
