/**
 * The reproduction's document: REPRODUCTION.md's text from the results and the verdicts (every
 * verdict word comes from verdicts.ts, printed with its rule). Pure: no I/O.
 */
import { PruneCriterion, type PruneResult, type SimilarityCurves } from '../../api/generated/introspect/v1/analysis';
import { commandLine } from './options';
import type { KindRun, Results } from './run';
import { THESIS_ACCURACY, THESIS_EPOCHS, THESIS_TABLE_5_1, THESIS_TRUNCATED_ACCURACY } from './thesis';
import * as V from './verdicts';

const f3 = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(3));
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);

/** Per layer: the mean over classes of the std over the layer's neurons (the thesis' fig. 4-19 curves, averaged). */
function withinLayerStd(c: SimilarityCurves): number[] {
  return c.layerIndices.map((_l, j) => mean(Array.from({ length: c.classes }, (_x, i) => c.std[i * c.layers + j] ?? NaN)));
}

function table(head: string[], rows: string[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function resultOf(r: Results, layer: number, c: PruneCriterion): PruneResult | undefined {
  return r.prune.results.find((x) => x.layer === layer && x.criterion === c);
}

/** How the model was trained against the thesis' setting, from its sidecar's facts. */
export function trainingSentence(r: Pick<Results, 'model' | 'training'>): string {
  const t = r.training ?? {};
  const epochs = t.epochs === undefined ? 'for an unrecorded number of epochs' : `for ${t.epochs} epoch${t.epochs === 1 ? '' : 's'}${t.epochs === THESIS_EPOCHS ? ' as the thesis did' : ` instead of the thesis' ${THESIS_EPOCHS}`}`;
  const images = t.trainingImages === undefined ? '' : ` on ${t.trainingImages.toLocaleString('en-US')} training images`;
  const accuracy = t.testAccuracy === undefined ? 'no test accuracy recorded' : `test accuracy ${t.testAccuracy.toFixed(3)}`;
  return `\`${r.model.name}\` was trained for this project ${epochs}${images} (its sidecar: ${accuracy}; thesis ${THESIS_ACCURACY}).`;
}

/** A verdict as the doc prints it: the word in bold, its rule in brackets. */
export function said(v: V.Verdict): string {
  return `**${v.word}** (${v.rule})`;
}

/** The statements on what held: the numbers, and each verdict with its rule (verdicts.ts). */
export function findings(r: Results): string[] {
  const out: string[] = [];
  const layers = [...new Set(r.prune.results.map((x) => x.layer))].sort((a, b) => a - b);
  const P = PruneCriterion;
  const rows = layers.map((l) => ({
    layer: l,
    top: resultOf(r, l, P.PRUNE_CRITERION_SIMILARITY_TOP)?.accuracy ?? NaN,
    bottom: resultOf(r, l, P.PRUNE_CRITERION_SIMILARITY_BOTTOM)?.accuracy ?? NaN,
    random: resultOf(r, l, P.PRUNE_CRITERION_RANDOM)?.accuracy ?? NaN,
    l1: resultOf(r, l, P.PRUNE_CRITERION_L1)?.accuracy ?? NaN,
    apoz: resultOf(r, l, P.PRUNE_CRITERION_APOZ)?.accuracy ?? NaN,
  }));
  const n = rows.length;
  const topWorse = rows.filter((x) => x.top < x.bottom);
  out.push(
    `**Top vs bottom 40% (table 5-1).** Removing the most similar 40% hurt more than removing the least similar 40% in ${topWorse.length} of ${n} layers ` +
      `(layers ${topWorse.map((x) => x.layer).join(', ') || 'none'}); mean accuracy after top-pruning ${f3(mean(rows.map((x) => x.top)))}, after bottom-pruning ${f3(mean(rows.map((x) => x.bottom)))} ` +
      `(baseline ${f3(r.prune.baseline)}). The thesis had top < bottom in layers 1–7 and the reverse in layer 0: ${said(V.topWorseThanBottom(rows))}.`,
  );
  const span = rows.filter((x) => V.THESIS_DROP_LAYERS.includes(x.layer) && Number.isFinite(x.top));
  if (span.length > 0) {
    const lo = Math.min(...span.map((x) => x.top));
    const hi = Math.max(...span.map((x) => x.top));
    out.push(
      `In layers ${span.map((x) => x.layer).join(', ')} our top-pruned accuracy spans ${f3(lo)}–${f3(hi)} (thesis 0.100–0.407, bottom-pruning at 0.70–0.74); ` +
        `the drop of that size: ${said(V.dropOfThesisSize(rows))}.`,
    );
  }
  const vs = (name: string, key: 'random' | 'l1' | 'apoz'): string => {
    const worse = rows.filter((x) => x.top < x[key]).length;
    const gentler = rows.filter((x) => x.bottom > x[key]).length;
    return `${name}: top-pruning hurt more in ${worse}/${n} layers, bottom-pruning hurt less in ${gentler}/${n}`;
  };
  out.push(`**Against the baselines at the same 40%.** ${vs('random (mean over seeds)', 'random')}; ${vs('L1 (smallest norms)', 'l1')}; ${vs('APoZ (most zeros)', 'apoz')}. (The thesis has no baselines: no verdict.)`);

  for (const s of r.similarity) {
    const m = s.curves.meanOverClasses;
    const argmax = m.indexOf(Math.max(...m));
    const li = s.curves.layerIndices;
    const later = m.slice(2);
    out.push(
      `**Curves, method ${s.method}.** Mean over classes per layer: ${m.map((v) => v.toFixed(3)).join(', ')} (layers ${li.join(', ')}); highest at layer ${li[argmax]}. ` +
        `The thesis' shape is low in layers 0–1, rising, then flat or falling in the deep layers (VGG11_CIFAR peaks at layer 3 in its fig. 5-1). ` +
        `The rise from layers 0–1: ${said(V.curveRises(li, m))}` +
        `${later.length > 2 ? `; the last layer is ${m.at(-1)! < Math.max(...later) ? 'below' : 'at'} the peak` : ''}` +
        `${m.length === 8 ? `; change over layers 0–3 ${f3(m[3]! - m[0]!)}, over layers 4–7 ${f3(m[7]! - m[4]!)}` : ''}.`,
    );
  }

  if (r.similarity.length === 2) {
    const [a, b] = r.similarity.map((s) => s.curves.meanOverClasses);
    const higher = a!.filter((v, i) => b![i]! > v).length;
    out.push(
      `**Method 2 vs method 1.** Method 2 (vs the class's own GBP image) is higher than method 1 (vs the average image) in ${higher} of ${a!.length} layers ` +
        `(mean over layers ${f3(mean(b!))} vs ${f3(mean(a!))}); the thesis expected method 2 to give higher values (3.3.2): ${said(V.method2Higher(a!, b!))}.`,
    );
  }

  const s1 = r.similarity[0]?.curves;
  if (s1) {
    const dead = s1.layerIndices.map((_l, j) => mean(Array.from({ length: s1.classes }, (_x, i) => s1.deadCount[i * s1.layers + j] ?? 0)));
    const unchanged = (key: 'l1' | 'apoz'): number[] => rows.filter((x) => Math.abs(x[key] - r.prune.baseline) < 1e-9).map((x) => x.layer);
    const u1 = unchanged('l1');
    const ua = unchanged('apoz');
    out.push(
      `**Silent filters.** Neurons whose GBP image at the class average is exactly zero ("dead"), mean over classes, per layer: ` +
        `${s1.layerIndices.map((l, j) => `${l}: ${dead[j]!.toFixed(0)}/${r.model.convChannels[l] ?? '?'}`).join(', ')}. ` +
        `L1 left the accuracy exactly at the baseline in layers ${u1.join(', ') || 'none'} and APoZ in layers ${ua.join(', ') || 'none'}` +
        (u1.length + ua.length > 0
          ? `: zeroing 40% of those layers' filters changed nothing measurable, so they hold at least 40% filters that are near-silent (small weights, or zero after the ReLU) even where their GBP image is not exactly zero. ` +
            `Removing "unimportant" neurons without loss therefore needs no similarity value: L1 or APoZ find them, and a criterion is better only if it beats these.`
          : '.'),
    );
  }

  const depth0 = r.sanity.find((d) => d.depth === 0)?.curves?.meanOverClasses;
  const deepest = r.sanity.at(-1);
  if (depth0 && deepest?.curves && deepest.depth > 0) {
    const kept = deepest.curves.meanOverClasses.map((v, i) => v / (depth0[i] || NaN));
    const keptMean = mean(kept.filter(Number.isFinite));
    const sm = r.options.sanityMethod ?? 1;
    out.push(
      `**Sanity check.** The cascade re-initialises from the output down, and a layer-j neuron's GBP image depends only on layers 0..j, so ` +
        `${sm === 1 ? 'method 1 values change only in layers that were themselves re-initialised' : 'method 2 sees every re-initialised layer through the class image φ_i'}. ` +
        `With the last ${deepest.depth} weight layer(s) re-initialised (${deepest.reinitialised.join(', ')}), the method-${sm} curve keeps ${kept
          .map((v) => (Number.isFinite(v) ? `${(v * 100).toFixed(0)}%` : '–'))
          .join(', ')} of the trained model's value per layer (mean ${(keptMean * 100).toFixed(0)}%): ` +
        `${keptMean > SURVIVES_ABOVE ? 'most of the similarity survives re-initialisation, so much of it reflects the image and the architecture rather than learned weights (as Adebayo et al. found for GBP)' : 'a large part of the similarity is lost, so it depends on the learned weights'} ` +
        `(read: "survives" when the mean kept is above ${SURVIVES_ABOVE * 100}%; the thesis has no sanity check: no verdict).`,
    );
  }

  const diag = (k: KindRun): number => mean(k.confidence.diagonal);
  const meanKind = r.kinds[0];
  const topKind = r.kinds[1];
  out.push(
    `**Confidence matrices.** Mean diagonal (softmax of the true class for each class's average): ${r.kinds.map((k) => `${k.name} ${f3(diag(k))}`).join(', ')}. ` +
      `The thesis (fig. 3-12/3-13, MNIST/AlexNet) found plain means misread and its data-driven max-activation (top-k) averages at 1.00 on the diagonal. ` +
      (meanKind
        ? `Plain means misread here (${meanKind.confidence.diagonal.filter((p) => p < V.MISREAD_BELOW).length} of ${meanKind.confidence.diagonal.length} below ${V.MISREAD_BELOW}): ${said(V.meansMisread(meanKind.confidence.diagonal))}; `
        : '') +
      (topKind
        ? `top-${r.options.k} averages read as their class (mean ${f3(diag(topKind))}): ${said(V.topKRead(topKind.confidence.diagonal))}; `
        : '') +
      `the network-driven activation-maximisation images reach the stop probability by construction (no verdict).`,
  );
  const best = [...r.probes.results].sort((a, b) => b.testAccuracy - a.testAccuracy)[0];
  if (best) {
    out.push(
      `**Layer probes.** The best linear probe is on layer ${best.layer} (test ${f3(best.testAccuracy)}) against the full model's ${f3(r.probes.modelAccuracy)} on the same images. ` +
        `The thesis retrained a 4-conv-layer VGG11 to ${THESIS_TRUNCATED_ACCURACY.toFixed(3)} (> ${THESIS_ACCURACY}); a frozen linear probe is a cheaper and weaker test of the same question: ` +
        `${said(V.truncationBeatsFull(r.probes.results, r.probes.modelAccuracy))}.`,
    );
  }
  return out;
}

/** The sanity check reads as "the similarity survives" when the deepest cascade keeps more than this on average. */
const SURVIVES_ABOVE = 0.7;

export function renderDoc(r: Results, figs: { grid: string; heat: string; curves: string[]; sanity?: string }): string {
  const o = r.options;
  const P = PruneCriterion;
  const lines: string[] = [];
  const all = o.layers === undefined;
  lines.push('# Reproducing the thesis on VGG11 / CIFAR-10');
  lines.push('');
  lines.push(
    `Generated by \`${commandLine(o)}\` (scripts/reproduce.ts) on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC. ` +
      `Everything below was computed by the service over gRPC (server started in the process, generated client), on \`${r.model.name}\` ` +
      `(${r.model.parameters.toLocaleString('en-US')} parameters, conv channels ${r.model.convChannels.join('/')}) and the CIFAR-10 files in the shared folder ` +
      `(JPEG-mirror images: see shared/datasets/README.md).`,
  );
  if (o.quick) lines.push('', '**This is a `--quick` run with tiny limits (a smoke test), not the reproduction: its numbers mean nothing.**');
  lines.push('', `Machine: ${r.machine}.`, '');
  lines.push('## What was run', '');
  const images = r.images ?? { train: NaN, test: NaN };
  const n = (x: number): string => (Number.isFinite(x) ? x.toLocaleString('en-US') : '?');
  const pruneImages = Math.min(o.pruneLimit, images.test);
  const classes = r.model.classNames.length;
  const params: string[][] = [
    ['class averages', `train split (${n(images.train)} images${o.subset ? `: the first ${o.subset.train} of data_batch_1` : ''}); mean (rescaled), top-${o.k}, bottom-${o.k}, activation maximisation (≤ ${o.actMaxSteps} steps, step 0.01, stop at p ≥ 0.99); all ${classes} classes`],
    ['similarity', `methods 1 and 2, cosine, guided backprop, objective sum of abs(z), mean class averages (train split); classes ${o.similarityClasses?.join(', ') ?? `all ${classes}`}; conv layers ${all ? `all ${r.model.convChannels.length}` : o.layers!.join(', ')}`],
    [
      'pruning (table 5-1)',
      `40% of one conv layer zeroed (weights and bias), no fine-tuning; first ${n(pruneImages)} test images; criteria: similarity top/bottom (method 1, mean over classes), random (${o.randomSeeds} seeds, mean ± std), L1, APoZ (${o.apozImages} train images)`,
    ],
    ['layer probes', `GAP features of each conv layer, logistic head, ${o.probeIterations} L-BFGS iterations; ${o.probeTrain.toLocaleString('en-US')} train / ${o.probeTest.toLocaleString('en-US')} test images`],
    ['sanity check', `method ${o.sanityMethod ?? 1}, classes ${o.sanityClasses.join(', ')}, cascading re-initialisation from the last layer, depths 0–${o.sanityDepth}, seed 1`],
  ];
  lines.push(table(['part', 'parameters', 'time (s)'], params.map(([p, q]) => [p!, q!, timeOf(r, p!)])));
  lines.push('', `Command: \`${commandLine(o)}\` (every number is also in [reproduction/results.json](reproduction/results.json)).`);

  lines.push('', '### Differences from the thesis\' setting', '');
  lines.push(
    [
      `- The model is not the thesis' checkpoint: ${trainingSentence(r)}`,
      `- The CIFAR-10 images come from a JPEG (quality 75) mirror, and ${n(images.train)} of the ${r.training?.trainingImages !== undefined ? `${n(r.training.trainingImages)} images the model was trained on` : 'CIFAR-10 training images'} are at hand (the shared folder's train split), so the class averages use those ${n(images.train)} images.`,
      `- The thesis leaves K of the top/bottom-k averages open; we use K = ${o.k}.`,
      `- Table 5-1 is evaluated on the first ${n(pruneImages)} of the ${n(images.test)} test images${pruneImages < images.test ? ' (to fit the time available on 2 cores); the thesis used the whole test set' : ''}. The baselines (random, L1, APoZ) are not in the thesis.`,
      '- The thesis\' layer truncation retrains a shortened network; here a linear probe on frozen features asks the same question cheaply, so the numbers are not comparable one to one.',
    ].join('\n'),
  );

  // Averages and confidence.
  lines.push('', '## Class averages and confidence (thesis 3.2, fig. 3-12/3-13)', '');
  lines.push(`![class averages](reproduction/${figs.grid})`, '');
  lines.push(`Rows: ${r.kinds.map((k) => k.name).join(', ')}; columns: ${r.model.classNames.join(', ')}.`, '');
  lines.push(`![confidence matrices](reproduction/${figs.heat})`, '');
  lines.push(`Confidence heatmaps, left to right: ${r.kinds.map((k) => k.name).join(', ')} (row = class average, column = predicted class, white 0 → dark blue 1).`, '');
  lines.push(
    table(
      ['class', ...r.kinds.map((k) => `${k.name}: p(true)`), ...r.kinds.map((k) => `${k.name}: predicted`)],
      r.model.classNames.map((name, i) => [
        name,
        ...r.kinds.map((k) => f3(k.confidence.diagonal[i])),
        ...r.kinds.map((k) => {
          const row = k.confidence.probabilities.slice(i * k.confidence.classes, (i + 1) * k.confidence.classes);
          return r.model.classNames[row.indexOf(Math.max(...row))] ?? '–';
        }),
      ]),
    ),
  );

  // Curves.
  lines.push('', '## Similarity curves (thesis 4.2, fig. 4-18/4-19, 5-1)', '');
  for (const f of figs.curves) lines.push(`![similarity curves](reproduction/${f})`, '');
  lines.push(
    table(
      ['method', ...r.similarity[0]!.curves.layerIndices.map((l) => `layer ${l}`)],
      r.similarity.flatMap((s) => [
        [`${s.method}: mean over classes`, ...s.curves.meanOverClasses.map((v) => f3(v))],
        [`${s.method}: std of class means`, ...s.curves.stdOverClasses.map((v) => f3(v))],
        [`${s.method}: within-layer std (mean over classes)`, ...withinLayerStd(s.curves).map((v) => f3(v))],
      ]),
    ),
  );
  lines.push(
    '',
    'Thesis: on VGG11_ImageNet (method 2, fig. 4-18) the values rise from layers 0–1 and level off in layers 4–7; on VGG11_CIFAR (fig. 5-1) the layer curve peaks at layer 3, which motivated its 4-layer truncation.',
  );

  // Table 5-1.
  lines.push('', '## Table 5-1: pruning 40% of one layer', '');
  lines.push(`Unpruned accuracy on these ${n(pruneImages)} test images: **${f3(r.prune.baseline)}** (thesis: ${THESIS_ACCURACY} on its full test set).`, '');
  const layers = [...new Set(r.prune.results.map((x) => x.layer))].sort((a, b) => a - b);
  lines.push(
    table(
      ['layer', 'neurons', 'thesis top', 'thesis bottom', 'top', 'bottom', 'top − bottom', 'random', 'L1', 'APoZ'],
      layers.map((l) => {
        const g = (c: PruneCriterion): PruneResult | undefined => resultOf(r, l, c);
        const rnd = g(P.PRUNE_CRITERION_RANDOM);
        const top = g(P.PRUNE_CRITERION_SIMILARITY_TOP)?.accuracy;
        const bottom = g(P.PRUNE_CRITERION_SIMILARITY_BOTTOM)?.accuracy;
        return [
          String(l),
          String(r.model.convChannels[l] ?? '–'),
          f3(THESIS_TABLE_5_1[l]?.[0]),
          f3(THESIS_TABLE_5_1[l]?.[1]),
          f3(top),
          f3(bottom),
          top !== undefined && bottom !== undefined ? f3(top - bottom) : '–',
          rnd ? `${f3(rnd.accuracy)} ± ${f3(rnd.accuracyStd)}` : '–',
          f3(g(P.PRUNE_CRITERION_L1)?.accuracy),
          f3(g(P.PRUNE_CRITERION_APOZ)?.accuracy),
        ];
      }),
    ),
  );

  // Probes.
  lines.push('', '## Layer probes (thesis 5.1, layer truncation)', '');
  lines.push(`Full model on the same test images: ${f3(r.probes.modelAccuracy)}.`, '');
  lines.push(
    table(
      ['layer', 'features', 'train accuracy', 'test accuracy'],
      r.probes.results.map((p) => [String(p.layer), String(p.features), f3(p.trainAccuracy), f3(p.testAccuracy)]),
    ),
  );

  // Sanity.
  lines.push('', '## Sanity check (cascading re-initialisation)', '');
  if (figs.sanity) lines.push(`![sanity check](reproduction/${figs.sanity})`, '');
  const li = r.sanity[0]?.curves?.layerIndices ?? [];
  lines.push(
    table(
      ['depth', 're-initialised', ...li.map((l) => `layer ${l}`)],
      r.sanity.map((d) => [String(d.depth), d.reinitialised.join(', ') || '(trained)', ...(d.curves?.meanOverClasses ?? []).map((v) => f3(v))]),
    ),
  );

  lines.push('', '## What held and what did not', '');
  for (const s of findings(r)) lines.push(`- ${s}`);
  lines.push('');
  return lines.join('\n');
}

function timeOf(r: Results, part: string): string {
  const key: Record<string, string[]> = {
    'class averages': ['class averages and confidence matrices'],
    similarity: ['similarity method 1', 'similarity method 2'],
    'pruning (table 5-1)': ['pruning sweep (table 5-1)'],
    'layer probes': ['layer probes'],
    'sanity check': ['sanity check'],
  };
  return (key[part] ?? []).map((k) => (r.seconds[k] ?? NaN).toFixed(1)).join(' + ');
}

