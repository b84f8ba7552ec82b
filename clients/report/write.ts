/**
 * A report run → files: report.html (services/report/html.ts `renderReport`, first similarity method),
 * report-method-<m>.html for any further method, summary.json (every number, no images), and the
 * class-average PNGs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  AttributionMethod,
  NeuronObjective,
  attributionMethodToJSON,
  neuronObjectiveToJSON,
  similarityMetricToJSON,
  type ClassAverage,
} from '../../api/generated/introspect/v1/analysis';
import { engineToJSON, splitToJSON } from '../../api/generated/introspect/v1/common';
import { renderReport, type ReportData } from '../../services/report/html';
import type { ReportGallery, ReportSanityDepth } from '../../services/report/report-data';
import { averageKindName, type ReportRun, type SimilarityRun } from './collect';
import { averageEntry, curvesEntry, layerEntry } from './entries';

const METHOD_LABEL: Record<number, string> = { 1: 'method 1: vs the class average', 2: 'method 2: vs the class-logit GBP' };

/** A file-name-safe version of a class name. */
export function fileSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '') || 'class';
}

export function reportFileName(run: ReportRun, method: number): string {
  return method === run.similarity[0]?.method ? 'report.html' : `report-method-${method}.html`;
}

/** The request as the report's parameter table shows it. */
export function reportParameters(run: ReportRun, sim?: SimilarityRun): Record<string, unknown> {
  const r = run.request;
  const average = r.average ?? {};
  return {
    model: r.model,
    dataset: r.dataset,
    average: { ...average, kind: averageKindName(average.kind), split: average.split ? splitToJSON(average.split) : 'train' },
    ...(sim ? { 'similarity method': METHOD_LABEL[sim.method] ?? sim.method } : {}),
    metric: r.metric ? similarityMetricToJSON(r.metric) : 'cosine',
    attribution: r.attribution
      ? {
          method: attributionMethodToJSON(r.attribution.method ?? AttributionMethod.ATTRIBUTION_METHOD_GUIDED_BACKPROP),
          objective: neuronObjectiveToJSON(r.attribution.objective ?? NeuronObjective.NEURON_OBJECTIVE_ABS_SUM),
          ...(r.attribution.igSteps ? { igSteps: r.attribution.igSteps } : {}),
        }
      : 'guided backprop, sum(|z|)',
    classes: r.classes?.length ? r.classes : 'all',
    layers: r.layers?.length ? r.layers : 'all conv layers',
    'rank images': r.rankImages ?? 8,
    engine: r.engine ? engineToJSON(r.engine) : "server's default",
    ...(r.sanity ? { sanity: r.sanity } : {}),
    'other reports': run.similarity.filter((s) => s !== sim).map((s) => reportFileName(run, s.method)),
    'computed in': `${run.seconds.toFixed(1)} s`,
  };
}

/** What `renderReport` shows for one similarity method (averages and confidence are shared). */
export function toReportData(run: ReportRun, sim: SimilarityRun | undefined): ReportData {
  const classNames = run.dataset.classNames.length > 0 ? run.dataset.classNames : run.model.classNames;
  const channels = new Map(run.model.convLayers.map((l) => [l.index, l.channels]));
  const galleries: ReportGallery[] | undefined = sim?.layers.map((l) => ({
    classIndex: l.classIndex,
    layer: l.layer,
    highest: l.highest.map((n) => ({ neuron: n.neuron, value: n.value, png: n.image?.png ?? new Uint8Array() })),
    lowest: l.lowest.map((n) => ({ neuron: n.neuron, value: n.value, png: n.image?.png ?? new Uint8Array() })),
    dead: l.dead,
    channels: channels.get(l.layer) ?? l.values.length,
  }));
  const sanity: ReportSanityDepth[] | undefined = sim?.method === (run.request.methods?.[0] ?? 1)
    ? run.sanity?.map((d) => ({ depth: d.depth, reinitialised: d.reinitialised, meanOverClasses: d.curves?.meanOverClasses ?? [] }))
    : undefined;
  return {
    title: `${run.model.name} on ${run.dataset.name}${sim ? ` — similarity ${METHOD_LABEL[sim.method] ?? sim.method}` : ''}`,
    modelName: run.model.name,
    modelSha256: run.model.sha256,
    dataset: run.dataset.name,
    generatedAt: run.startedAt,
    classNames,
    layerNames: run.model.convLayers.map((l) => l.name),
    parameters: reportParameters(run, sim),
    averages: run.averages
      .filter((a) => (a.image?.png.length ?? 0) > 0)
      .map((a) => ({
        classIndex: a.classIndex,
        png: a.image!.png,
        confidence: a.averageConfidence,
        predicted: a.predictedClass,
        imagesUsed: a.imagesUsed,
        steps: a.steps > 0 ? a.steps : undefined,
      })),
    confidence: {
      rowClasses: Array.from({ length: run.confidence.n }, (_, r) => r),
      probabilities: run.confidence.probabilities,
    },
    curves: sim && {
      classes: sim.classes,
      layers: sim.curves.layerIndices,
      mean: sim.curves.mean,
      std: sim.curves.std,
      meanOverClasses: sim.curves.meanOverClasses,
      stdOverClasses: sim.curves.stdOverClasses,
      deadCount: sim.curves.deadCount,
    },
    galleries,
    sanity,
  };
}

function confidenceEntry(run: ReportRun): Record<string, unknown> {
  const c = run.confidence;
  const rows = Array.from({ length: c.n }, (_, r) => c.probabilities.slice(r * c.classes, (r + 1) * c.classes));
  const meanDiagonal = c.diagonal.length > 0 ? c.diagonal.reduce((a, b) => a + b, 0) / c.diagonal.length : null;
  return { n: c.n, classes: c.classes, classNames: c.classNames, probabilities: rows, diagonal: c.diagonal, meanDiagonal };
}

/** Everything the report computed, as plain JSON (no images; PNG files named where written). */
export function reportSummary(run: ReportRun, files: { averages: Map<ClassAverage, string>; reports: string[] }): Record<string, unknown> {
  const names = run.dataset.classNames;
  return {
    generatedAt: run.startedAt,
    seconds: run.seconds,
    model: {
      name: run.model.name,
      sha256: run.model.sha256,
      input: run.model.input?.shape ?? [],
      convLayers: run.model.convLayers.map((l) => ({ index: l.index, name: l.name, channels: l.channels })),
    },
    dataset: { name: run.dataset.name, classNames: names },
    parameters: reportParameters(run),
    averages: run.averages.map((a) => averageEntry(a, files.averages.get(a))),
    extraAverages: run.extraAverages.map((e) => ({
      kind: averageKindName(e.spec.kind),
      spec: e.spec,
      averages: e.averages.map((a) => averageEntry(a, files.averages.get(a))),
    })),
    confidence: confidenceEntry(run),
    similarity: run.similarity.map((s) => ({
      method: s.method,
      cached: s.cached,
      curves: curvesEntry(s.curves, s.classes),
      layers: s.layers.map((l) => layerEntry(l, names[l.classIndex] ?? String(l.classIndex), s.cached)),
    })),
    ...(run.sanity
      ? {
          sanity: run.sanity.map((d) => ({
            depth: d.depth,
            reinitialised: d.reinitialised,
            meanOverClasses: d.curves?.meanOverClasses ?? [],
            difference: d.difference,
          })),
        }
      : {}),
    files: { reports: files.reports, summary: 'summary.json' },
  };
}

async function writeAverages(dir: string, sub: string, averages: ClassAverage[], into: Map<ClassAverage, string>): Promise<void> {
  const folder = path.join(dir, sub);
  await fs.promises.mkdir(folder, { recursive: true });
  for (const a of averages) {
    if (!a.image?.png.length) continue;
    const rel = path.posix.join(sub, `class-${a.classIndex}-${fileSafe(a.className)}.png`);
    await fs.promises.writeFile(path.join(dir, rel), a.image.png);
    into.set(a, rel);
  }
}

export interface WrittenReport {
  /** Absolute path of report.html. */
  report: string;
  summary: string;
  /** Every file written, relative to the folder. */
  files: string[];
}

export async function writeReport(dir: string, run: ReportRun): Promise<WrittenReport> {
  await fs.promises.mkdir(dir, { recursive: true });
  const averages = new Map<ClassAverage, string>();
  await writeAverages(dir, 'averages', run.averages, averages);
  for (const e of run.extraAverages) await writeAverages(dir, `averages-${averageKindName(e.spec.kind)}`, e.averages, averages);
  const reports: string[] = [];
  const sims = run.similarity.length > 0 ? run.similarity : [undefined];
  for (const sim of sims) {
    const name = sim ? reportFileName(run, sim.method) : 'report.html';
    await fs.promises.writeFile(path.join(dir, name), renderReport(toReportData(run, sim)));
    reports.push(name);
  }
  const summary = reportSummary(run, { averages, reports });
  await fs.promises.writeFile(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 1) + '\n');
  return {
    report: path.resolve(dir, 'report.html'),
    summary: path.resolve(dir, 'summary.json'),
    files: [...averages.values(), ...reports, 'summary.json'],
  };
}
