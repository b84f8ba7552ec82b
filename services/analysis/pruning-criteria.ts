/**
 * Which channels of a conv layer a pruning criterion removes (SPEC §4): rankings by similarity (top or
 * bottom), filter L1 norm (smallest first), APoZ (highest average percentage of zeros first), and a
 * seeded random choice. Each returns the chosen channels for a fraction, in ranking order.
 */
import type { EngineModel } from '../engines/engine';
import { IntrospectError, invalidArgument } from '../errors';
import { seededRandom } from '../random';

export type PruneCriterionName = 'similarity_top' | 'similarity_bottom' | 'random' | 'l1' | 'apoz';

export const PRUNE_CRITERIA: readonly PruneCriterionName[] = ['similarity_top', 'similarity_bottom', 'random', 'l1', 'apoz'];

/** How many of `channels` a fraction in (0, 1) removes: rounded, at least 1, at most all but one. */
export function prunedCount(fraction: number, channels: number): number {
  if (!(fraction > 0 && fraction < 1)) throw invalidArgument(`fraction ${fraction} must be in (0, 1)`);
  return Math.min(Math.max(1, Math.round(fraction * channels)), Math.max(1, channels - 1));
}

/**
 * Channel indices ordered by `score`, the channel to prune first first: `descending` puts the highest
 * score first. Ties go to the lower channel index (a stable, reproducible order).
 */
export function rankChannels(score: ArrayLike<number>, descending: boolean): number[] {
  const order = Array.from({ length: score.length }, (_, k) => k);
  order.sort((a, b) => (descending ? score[b] - score[a] : score[a] - score[b]) || a - b);
  return order;
}

/** Per output channel, the L1 norm of a conv layer's filter (the IR's weights: a following batch-norm is folded in). */
export function filterL1Norms(model: EngineModel, layer: number): Float64Array {
  const conv = model.convLayers[layer];
  if (!conv) throw invalidArgument(`conv layer ${layer} does not exist (the model has ${model.convLayers.length} conv layers)`);
  const node = model.graph.nodes.find((n) => n.name === conv.node);
  if (!node || node.op.op !== 'conv') throw new IntrospectError('internal', `conv layer ${layer}: node '${conv.node}' is not a conv in the graph`);
  const w = model.graph.weights.get(node.op.weight);
  if (!w) throw new IntrospectError('internal', `conv layer ${layer}: weight '${node.op.weight}' is missing`);
  const cout = w.shape[0];
  const per = w.data.length / cout;
  const norms = new Float64Array(cout);
  for (let k = 0; k < cout; k++) {
    let s = 0;
    for (let i = k * per; i < (k + 1) * per; i++) s += Math.abs(w.data[i]);
    norms[k] = s;
  }
  return norms;
}


/**
 * A random order of a layer's channels for one seed (Fisher–Yates). The same (seed, layer) always
 * gives the same order, so the channels a fraction removes are reproducible and nested across fractions.
 */
export function randomOrder(channels: number, seed: number, layer: number): number[] {
  const next = seededRandom(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(layer + 1, 0x85ebca6b));
  const order = Array.from({ length: channels }, (_, k) => k);
  for (let i = channels - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** Per channel, the mean over images of the fraction of positions ≤ 0 (from `activations`' zeroFraction [N, C]). */
export function apozScores(zeroFraction: Float32Array, n: number, channels: number): Float64Array {
  const s = new Float64Array(channels);
  for (let i = 0; i < n; i++) for (let k = 0; k < channels; k++) s[k] += zeroFraction[i * channels + k];
  for (let k = 0; k < channels; k++) s[k] = n > 0 ? s[k] / n : 0;
  return s;
}
