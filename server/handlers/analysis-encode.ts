/** Similarity results → wire messages (shared by Similarity and SanityCheck). */
import type {
  LayerSimilarity as WireLayerSimilarity,
  RankedNeuron as WireRankedNeuron,
  SimilarityCurves as WireCurves,
} from '../../api/generated/introspect/v1/analysis';
import type { LayerSimilarity, RankedNeuron, SimilarityCurves } from '../../services/analysis/similarity';
import type { Shape3 } from '../../services/data/preprocess';
import { attributionToPng } from '../../services/images/png';
import { float32Tensor } from '../tensors';

function rankedToWire(n: RankedNeuron, shape: Shape3, png: boolean): WireRankedNeuron {
  return {
    neuron: n.neuron,
    value: n.value,
    image: { tensor: float32Tensor(n.image, [...shape]), png: png ? attributionToPng(n.image, shape) : Buffer.alloc(0) },
  };
}

export function layerToWire(l: LayerSimilarity, shape: Shape3, png: boolean): WireLayerSimilarity {
  return {
    classIndex: l.classIndex,
    layer: l.layer,
    values: Array.from(l.values),
    dead: [...l.dead],
    mean: l.mean,
    std: l.std,
    lowest: l.lowest.map((n) => rankedToWire(n, shape, png)),
    highest: l.highest.map((n) => rankedToWire(n, shape, png)),
  };
}

export function curvesToWire(c: SimilarityCurves): WireCurves {
  return {
    classes: c.classes.length,
    layers: c.layers.length,
    mean: Array.from(c.mean),
    std: Array.from(c.std),
    meanOverClasses: Array.from(c.meanOverClasses),
    stdOverClasses: Array.from(c.stdOverClasses),
    deadCount: Array.from(c.deadCount),
    layerIndices: [...c.layers],
  };
}
