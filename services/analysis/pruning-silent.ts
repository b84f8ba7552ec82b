/**
 * Channels that are silent on a pruning sweep's evaluation images: 0 after their ReLU at every position
 * of every image, where that ReLU is the only reader of the conv output. Zeroing them changes nothing on
 * those images, so a sweep leaves them out of the work.
 */
import type { Engine, EngineModel } from '../engines/engine';
import { consumers } from '../graph/ir-util';
import { throwIfAborted } from '../errors';
import { zeroBelowZero as mapsNonPositiveToZero } from '../graph/ops';
import type { EvalSet } from './pruning-eval';

/**
 * Per conv layer among `layers` whose output is read only by a ReLU (`zeroingSilentIsExact`), the
 * channels whose activation is 0 at every position of every evaluation image: pruning them changes
 * nothing on these images. Other layers have no silent channels.
 */
export async function silentChannels(engine: Engine, model: EngineModel, set: EvalSet, layers: number[], signal?: AbortSignal): Promise<Map<number, Set<number>>> {
  const relu = layers.filter((l) => zeroingSilentIsExact(model, l));
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

/**
 * Whether zeroing a channel of conv `layer`'s output z changes nothing wherever its activation is 0: the
 * activation maps every value ≤ 0 to exactly 0 (ReLU, clip from 0), it is the only reader of z (no
 * residual add, concat or second branch reads z itself), and z is not the graph's output. Then a
 * channel that is 0 after the activation on every image reads the same zeroed or not.
 */
export function zeroingSilentIsExact(model: EngineModel, layer: number): boolean {
  const g = model.graph;
  const z = model.convLayers[layer].output;
  if (z === g.output) return false;
  const readers = consumers(g).get(z) ?? [];
  if (readers.length !== 1) return false;
  const act = readers[0];
  if (act.inputs.length !== 1) return false;
  return mapsNonPositiveToZero(act.op);
}
