/**
 * What the analysis commands write: plain JSON entries (every field present, no bulky tensors; the
 * generated toJSON drops zero-valued fields such as class 0), and numbers for tables.
 */
import type { ClassAverage, LayerSimilarity, RankedNeuron, SimilarityCurves } from '../../api/generated/introspect/v1/analysis';

/** A number for a table ('-' when not finite). */
export function fixed(v: number, digits = 3): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** JSON has no NaN: such values become null. */
export function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** A class average, its image replaced by its shape and the PNG file written. */
export function averageEntry(a: ClassAverage, file: string | undefined): Record<string, unknown> {
  return {
    classIndex: a.classIndex,
    className: a.className,
    imagesUsed: a.imagesUsed,
    meanConfidence: finite(a.meanConfidence),
    averageConfidence: finite(a.averageConfidence),
    predictedClass: a.predictedClass,
    steps: a.steps,
    imageShape: a.image?.tensor?.shape ?? [],
    ...(file ? { file } : {}),
  };
}

/** A ranked neuron: neuron, value and (when written) its PNG file. */
export function rankedEntry(n: RankedNeuron, file?: string): Record<string, unknown> {
  return { neuron: n.neuron, value: n.value, ...(file ? { file } : {}) };
}

/** A (class, layer) similarity without images; `files` maps neuron → PNG written. */
export function layerEntry(l: LayerSimilarity, className: string, cached: boolean, files?: Map<number, string>): Record<string, unknown> {
  return {
    classIndex: l.classIndex,
    className,
    layer: l.layer,
    mean: l.mean,
    std: l.std,
    values: l.values,
    dead: l.dead,
    lowest: l.lowest.map((n) => rankedEntry(n, files?.get(n.neuron))),
    highest: l.highest.map((n) => rankedEntry(n, files?.get(n.neuron))),
    cached,
  };
}

/** Curves with every field present. */
export function curvesEntry(c: SimilarityCurves, classes: number[]): Record<string, unknown> {
  return {
    classes,
    layers: c.layerIndices,
    mean: c.mean,
    std: c.std,
    meanOverClasses: c.meanOverClasses,
    stdOverClasses: c.stdOverClasses,
    deadCount: c.deadCount,
  };
}
