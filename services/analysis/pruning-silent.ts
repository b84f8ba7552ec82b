/**
 * Channels that are silent on a pruning sweep's evaluation images: 0 after their ReLU at every position
 * of every image. Zeroing them changes nothing on those images, so a sweep leaves them out of the work.
 */
import type { Engine, EngineModel } from '../engines/engine';
import { throwIfAborted } from '../errors';
import { zeroBelowZero as mapsNonPositiveToZero } from '../graph/ops';
import type { EvalSet } from './pruning-eval';

/**
 * Per conv layer among `layers` whose activation is a ReLU, the channels whose activation is 0 at every
 * position of every evaluation image: pruning them changes nothing on these images.
 */
export async function silentChannels(engine: Engine, model: EngineModel, set: EvalSet, layers: number[], signal?: AbortSignal): Promise<Map<number, Set<number>>> {
  const relu = layers.filter((l) => zeroBelowZero(model, l));
  const alive = new Map(relu.map((l) => [l, new Uint8Array(model.convLayers[l].channels)]));
  if (relu.length === 0) return new Map();
  for await (const b of set.batches(signal)) {
    throwIfAborted(signal);
    for (const a of await engine.activations(model, b.input, b.n, relu, { signal })) {
      const live = alive.get(a.layer)!;
      for (let i = 0; i < a.zeroFraction.length; i++) if (a.zeroFraction[i] !== 1) live[i % a.channels] = 1;
    }
  }
  return new Map([...alive].map(([l, live]) => [l, new Set([...live.keys()].filter((c) => live[c] === 0))]));
}

/** Whether conv `layer`'s activation maps every value ≤ 0 to exactly 0 (ReLU, clip from 0). */
function zeroBelowZero(model: EngineModel, layer: number): boolean {
  const z = model.convLayers[layer].output;
  return model.graph.nodes.some((n) => n.inputs[0] === z && mapsNonPositiveToZero(n.op));
}
