/**
 * Which attribution graph (services/graph/backward.ts) an engine call needs, and the key both engines cache
 * it under: model id + target + rule + wrt point + device passes.
 */
import type { AttributionRule, AttributionSpec } from '../graph/backward';
import { layerPointValue } from '../graph/backward';
import { shapeSize } from '../graph/ir-shapes';
import { passKey, type PassSet } from '../graph/passes';
import type { AttributionTarget, EngineModel, LayerPoint } from './engine';

export interface AttributionGraphChoice {
  spec: AttributionSpec;
  key: string;
  /** Columns of the `select` input: the target layer's channels or the classes. */
  width: number;
  /** The IR value the objectives are read from. */
  targetValue: string;
  /** Values in one output row: an input image, or the wrt layer's [C_k, H_k, W_k]. */
  rowSize: number;
}

/** The graph for a validated target (services/engines/requests.ts checkTarget). */
export function attributionGraph(
  model: EngineModel,
  target: AttributionTarget,
  rule: AttributionRule,
  passes: PassSet,
  wrt: LayerPoint | undefined,
): AttributionGraphChoice {
  const g = model.graph;
  const wrtValue = wrt ? layerPointValue(g, wrt) : g.input.name;
  const rowSize = shapeSize(g.shapes.get(wrtValue) ?? []);
  const tail = `${rule}|wrt=${wrt ? `${wrt.layer}:${wrt.at ?? 'activation'}` : 'input'}|${passKey(passes)}`;
  if (target.kind === 'conv') {
    const layer = model.convLayers[target.layer]!;
    return {
      spec: { target: 'conv', layer: target.layer, objective: target.objective },
      key: `${model.id}|attribution|conv:${target.layer}:${target.objective}|${tail}`,
      width: layer.channels,
      targetValue: layer.output,
      rowSize,
    };
  }
  return { spec: { target: 'logit' }, key: `${model.id}|attribution|logit|${tail}`, width: model.classes, targetValue: g.output, rowSize };
}
