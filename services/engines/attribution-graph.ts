/**
 * Which attribution graph (services/graph/backward.ts) an engine call needs, and the key both engines cache
 * it under: model id + target + rule.
 */
import type { AttributionRule, AttributionSpec } from '../graph/backward';
import type { AttributionTarget, EngineModel } from './engine';

export interface AttributionGraphChoice {
  spec: AttributionSpec;
  key: string;
  /** Columns of the `select` input: the target layer's channels or the classes. */
  width: number;
  /** The IR value the objectives are read from. */
  targetValue: string;
}

/** The graph for a validated target (services/engines/requests.ts checkTarget). */
export function attributionGraph(model: EngineModel, target: AttributionTarget, rule: AttributionRule): AttributionGraphChoice {
  if (target.kind === 'conv') {
    const layer = model.convLayers[target.layer]!;
    return {
      spec: { target: 'conv', layer: target.layer, objective: target.objective },
      key: `${model.id}|attribution|conv:${target.layer}:${target.objective}|${rule}`,
      width: layer.channels,
      targetValue: layer.output,
    };
  }
  return { spec: { target: 'logit' }, key: `${model.id}|attribution|logit|${rule}`, width: model.classes, targetValue: model.graph.output };
}
