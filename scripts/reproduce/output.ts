/** Writing a run's outputs (figures, results.json, REPRODUCTION.md) and reading back a raw dump. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { averagesGrid, curvesSvg, heatmaps, PALETTE, type Curve } from './figures';
import { renderDoc } from './markdown';
import type { Results } from './run';

/** Writes the figures, results.json and REPRODUCTION.md; returns the doc's path. */
export async function writeOutputs(r: Results): Promise<string> {
  const dir = path.join(r.options.out, 'reproduction');
  await fs.promises.mkdir(dir, { recursive: true });
  const grid = 'class-averages.png';
  await fs.promises.writeFile(path.join(dir, grid), averagesGrid(r.kinds.map((k) => k.averages.map((a) => a.image!.png))));
  const heat = 'confidence.png';
  await fs.promises.writeFile(path.join(dir, heat), heatmaps(r.kinds.map((k) => k.confidence)));
  const curves: string[] = [];
  for (const s of r.similarity) {
    const c = s.curves;
    const per: Curve[] = [];
    for (let i = 0; i < c.classes; i++) {
      per.push({ label: `class ${i}`, values: c.mean.slice(i * c.layers, (i + 1) * c.layers), colour: PALETTE[i % PALETTE.length]! });
    }
    per.push({ label: 'mean over classes', values: c.meanOverClasses, colour: '#000', width: 2.5 });
    const file = `similarity-method-${s.method}.svg`;
    await fs.promises.writeFile(path.join(dir, file), curvesSvg(`Similarity method ${s.method}: mean per layer (VGG11, CIFAR-10)`, c.layerIndices, per));
    curves.push(file);
  }
  let sanity: string | undefined;
  if (r.sanity.length > 0) {
    sanity = 'sanity-check.svg';
    const curvesS: Curve[] = r.sanity.map((d, i) => ({
      label: d.depth === 0 ? 'trained' : `${d.depth} re-initialised`,
      values: d.curves?.meanOverClasses ?? [],
      colour: PALETTE[i % PALETTE.length]!,
      width: d.depth === 0 ? 2.5 : 1.5,
      dash: d.depth > 0,
    }));
    await fs.promises.writeFile(path.join(dir, sanity), curvesSvg(`Sanity check: method ${r.options.sanityMethod ?? 1}, mean over classes`, r.sanity[0]?.curves?.layerIndices ?? [], curvesS));
  }
  await fs.promises.writeFile(path.join(dir, 'results.json'), JSON.stringify(toJson(r), null, 1) + '\n');
  const doc = path.join(r.options.out, 'REPRODUCTION.md');
  await fs.promises.writeFile(doc, renderDoc(r, { grid, heat, curves, sanity }));
  return doc;
}

/** results.json: every number, without the image bytes. */
function toJson(r: Results): unknown {
  return {
    ...r,
    kinds: r.kinds.map((k) => ({
      name: k.name,
      spec: k.spec,
      averages: k.averages.map((a) => ({ classIndex: a.classIndex, imagesUsed: a.imagesUsed, meanConfidence: a.meanConfidence, averageConfidence: a.averageConfidence, predictedClass: a.predictedClass, steps: a.steps })),
      confidence: { n: k.confidence.n, classes: k.confidence.classes, probabilities: k.confidence.probabilities, diagonal: k.confidence.diagonal },
    })),
  };
}

/** Reads a raw dump written by an earlier run (Buffers revived). */
export async function readRaw(file: string): Promise<Results> {
  const r = JSON.parse(await fs.promises.readFile(file, 'utf8'), (_k, v: unknown) =>
    v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer' ? Buffer.from((v as { data: number[] }).data) : v,
  ) as Results;
  // Dumps written before the option was named for what it is.
  const legacy = r.options as Results['options'] & { probeEpochs?: number };
  legacy.probeIterations ??= legacy.probeEpochs!;
  return r;
}
