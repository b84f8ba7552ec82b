/**
 * The similarity curves (SPEC §3), as both ends compute them: the server from its per-(class, layer)
 * values, the sharded client from the values its shards sent back. Pure maths, no imports, so that
 * services/ and clients/ can share it (layers: see test/layering.test.ts).
 */

/** One (class, layer)'s statistics over its neurons' values (dead neurons count as 0). */
export interface LayerStats {
  mean: number;
  std: number;
  dead: number;
}

export interface SimilarityCurves {
  classes: number[];
  layers: number[];
  /** classes × layers, row-major. */
  mean: Float32Array;
  std: Float32Array;
  /** Per layer: the mean over classes of the class means. */
  meanOverClasses: Float32Array;
  /** Per layer: the population std over classes of the class means. */
  stdOverClasses: Float32Array;
  /** classes × layers. */
  deadCount: Uint32Array;
}

/** Mean and population standard deviation (0 and 0 for no values). */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) return { mean: 0, std: 0 };
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i];
  const mean = s / n;
  let v = 0;
  for (let i = 0; i < n; i++) v += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(v / n) };
}

/** Curves from per-(class, layer) statistics, `stats[c][l]` in the order of `classes` and `layers`. */
export function buildCurves(classes: number[], layers: number[], stats: LayerStats[][]): SimilarityCurves {
  const nc = classes.length;
  const nl = layers.length;
  const mean = new Float32Array(nc * nl);
  const std = new Float32Array(nc * nl);
  const deadCount = new Uint32Array(nc * nl);
  for (let c = 0; c < nc; c++) {
    for (let l = 0; l < nl; l++) {
      const s = stats[c]?.[l];
      if (!s) throw new Error(`missing similarity statistics for class ${classes[c]}, layer ${layers[l]}`);
      mean[c * nl + l] = s.mean;
      std[c * nl + l] = s.std;
      deadCount[c * nl + l] = s.dead;
    }
  }
  const meanOverClasses = new Float32Array(nl);
  const stdOverClasses = new Float32Array(nl);
  for (let l = 0; l < nl; l++) {
    const column = Array.from({ length: nc }, (_, c) => stats[c][l].mean);
    const ms = meanStd(column);
    meanOverClasses[l] = ms.mean;
    stdOverClasses[l] = ms.std;
  }
  return { classes: [...classes], layers: [...layers], mean, std, meanOverClasses, stdOverClasses, deadCount };
}
