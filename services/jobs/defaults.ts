/**
 * Every default of the analysis requests, in one place: what an unset (0 / unspecified) field of a
 * request means. The services define the defaults of their own options; this module names them for
 * the boundary (server/handlers decode requests with them) and adds the request-level ones.
 */
import type { SplitName } from '../data/dataset';

export { ACTIVATION_MAX_DEFAULTS } from '../analysis/activation-max';
export { DEFAULT_K } from '../analysis/averages';
export { DEFAULT_EXAMPLES } from '../analysis/examples';
export { DEFAULT_IG_STEPS } from '../analysis/neuron-images';
export { DEFAULT_PROBE_EPOCHS, DEFAULT_PROBE_L2 } from '../analysis/probes';
export { DEFAULT_APOZ_IMAGES, DEFAULT_FRACTIONS, DEFAULT_RANDOM_SEEDS } from '../analysis/pruning';

/**
 * What an unspecified split means in every request (proto: SPLIT_UNSPECIFIED = test): the held-out
 * images, on which accuracies are measured, so that class averages describe the same images.
 */
export const DEFAULT_SPLIT: SplitName = 'test';
