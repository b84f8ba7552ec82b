/** `introspect similarity` and `introspect sanity`: similarity values, their curves, and the sanity check. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayerSimilarity, SimilarityCurves } from '../../../api/generated/introspect/v1/analysis';
import { curvesEntry, fixed, layerEntry } from '../../report/entries';
import { SERVERS_FLAGS, shardedClientFor } from '../../sharded-cli';
import { UsageError, type ParsedArgs } from '../args';
import { str, type Command } from '../command';
import type { CliContext } from '../context';
import { table } from '../format';
import {
  ATTRIBUTION_FLAGS,
  AVERAGE_FLAGS,
  ENGINE_FLAG,
  SIMILARITY_FLAGS,
  count,
  similarityRequest,
} from './analysis-flags';

/** Rank images per end when --out is given without --rank-images. */
const DEFAULT_RANK_IMAGES_WITH_OUT = 8;

function modelAndDataset(args: ParsedArgs, usage: string): [string, string] {
  if (args.positionals.length !== 2) throw new UsageError(`usage: ${usage}`);
  return args.positionals as [string, string];
}

/** Rows of "mean±std" per class and layer, then the mean over classes, and dead counts. */
function curvesTable(curves: SimilarityCurves, classes: number[], names: string[]): string {
  const L = curves.layerIndices.length;
  const header = ['CLASS', 'NAME', ...curves.layerIndices.map((l) => `LAYER ${l}`)];
  const rows: Array<Array<string | number>> = classes.map((c, ci) => [
    c,
    names[c] ?? String(c),
    ...curves.layerIndices.map((_, li) => `${fixed(curves.mean[ci * L + li]!)}±${fixed(curves.std[ci * L + li]!)}`),
  ]);
  rows.push(['all', 'mean±std', ...curves.layerIndices.map((_, li) => `${fixed(curves.meanOverClasses[li]!)}±${fixed(curves.stdOverClasses[li]!)}`)]);
  rows.push(['', 'dead', ...curves.layerIndices.map((_, li) => classes.reduce((n, _c, ci) => n + (curves.deadCount[ci * L + li] ?? 0), 0))]);
  return table(header, rows);
}

export const similarityCommand: Command = {
  spec: {
    name: 'similarity',
    usage: '<model> <dataset>',
    summary: 'Similarity of every conv neuron\'s image to its class representative; prints the per-layer curves.',
    flags: {
      ...SIMILARITY_FLAGS,
      'rank-images': { type: 'number', arg: 'N', help: 'images of the N highest and lowest neurons per (class, layer) (default 0; 8 with --out)' },
      out: { type: 'string', arg: 'DIR', help: 'write the ranked neurons\' PNGs and similarity.json here' },
      ...AVERAGE_FLAGS,
      ...ATTRIBUTION_FLAGS,
      ...ENGINE_FLAG,
      ...SERVERS_FLAGS,
    },
    details:
      '--json prints one object per (class, layer): values, dead channels, mean, std, highest and lowest neurons; then, last, {"summary": ...}: the per-layer curves (mean and std per class and over classes, dead counts).',
  },
  async run(args, ctx) {
    const [model, dataset] = modelAndDataset(args, 'introspect similarity <model> <dataset>');
    const out = str(args, 'out');
    const rankImages = args.flags['rank-images'] !== undefined ? count(args, 'rank-images') : out ? DEFAULT_RANK_IMAGES_WITH_OUT : 0;
    const request = { ...similarityRequest(args, model, dataset), rankImages, png: !!out };
    const sharded = shardedClientFor(args, ctx);
    const names = (await (sharded?.clients[0] ?? ctx.client).getDataset(dataset, ctx.callOpts())).classNames;
    if (out) await fs.promises.mkdir(out, { recursive: true });
    const progress = ctx.progress('similarity');
    const layers: Array<Record<string, unknown>> = [];
    const classes: number[] = [];
    let curves: SimilarityCurves | undefined;
    let cached = false;
    try {
      for await (const msg of (sharded ?? ctx.client).similarity(request, ctx.callOpts())) {
        cached = msg.cached;
        if (msg.progress) progress.update(msg.progress.done, msg.progress.total);
        if (msg.item?.$case === 'summary') {
          curves = msg.item.value;
          if (ctx.json) ctx.printJson({ summary: curvesEntry(curves, classes), cached: msg.cached });
        }
        if (msg.item?.$case !== 'layer') continue;
        const l: LayerSimilarity = msg.item.value;
        if (!classes.includes(l.classIndex)) classes.push(l.classIndex);
        const files = new Map<number, string>();
        if (out) {
          for (const [end, list] of [['highest', l.highest], ['lowest', l.lowest]] as const) {
            for (const [rank, n] of list.entries()) {
              if (!n.image?.png.length) continue;
              const file = `class-${l.classIndex}-layer-${l.layer}-${end}-${rank}-channel-${n.neuron}.png`;
              await fs.promises.writeFile(path.join(out, file), n.image.png);
              files.set(n.neuron, file);
            }
          }
        }
        const entry = layerEntry(l, names[l.classIndex] ?? String(l.classIndex), msg.cached, files);
        layers.push(entry);
        if (ctx.json) ctx.printJson(entry);
      }
    } finally {
      sharded?.close();
    }
    progress.done();
    if (!curves) throw new Error('the similarity stream ended without its summary');
    if (out) {
      await fs.promises.writeFile(
        path.join(out, 'similarity.json'),
        JSON.stringify({ model, dataset, method: str(args, 'method') ?? '1', metric: str(args, 'metric') ?? 'cosine', cached, curves: curvesEntry(curves, classes), layers }, null, 1) + '\n',
      );
    }
    if (ctx.json) return;
    const method = request.method === 2 ? 'method 2 (vs the class-logit image)' : 'method 1 (vs the class average)';
    ctx.print(`similarity ${method}, ${str(args, 'metric') ?? 'cosine'}: ${classes.length} classes × ${curves.layerIndices.length} layers${cached ? ' (from the server\'s cache)' : ''}`);
    ctx.print('');
    ctx.print(curvesTable(curves, classes, names));
    if (out) ctx.print(`\nwrote the ranked neurons' images and similarity.json to ${out}`);
  },
};

export const sanityCommand: Command = {
  spec: {
    name: 'sanity',
    usage: '<model> <dataset>',
    summary: 'Sanity check: similarity curves on the trained model beside copies with the top layers re-initialised.',
    flags: {
      seed: { type: 'number', arg: 'N', help: 'seed of the re-initialisation (default 0)' },
      'max-depth': { type: 'number', arg: 'N', help: 're-initialise at most the top N layers (default all)' },
      ...SIMILARITY_FLAGS,
      ...AVERAGE_FLAGS,
      ...ATTRIBUTION_FLAGS,
      ...ENGINE_FLAG,
    },
    details: '--json prints one object per depth: the layers re-initialised, the mean curve over classes and its difference from the trained model.',
  },
  async run(args, ctx) {
    const [model, dataset] = modelAndDataset(args, 'introspect sanity <model> <dataset>');
    const progress = ctx.progress('sanity');
    const rows: Array<Array<string | number>> = [];
    let layerIndices: number[] = [];
    for await (const d of ctx.client.sanityCheck(
      { similarity: similarityRequest(args, model, dataset), seed: count(args, 'seed'), maxDepth: count(args, 'max-depth') },
      ctx.callOpts(),
    )) {
      if (d.progress) progress.update(d.progress.done, d.progress.total);
      layerIndices = d.curves?.layerIndices ?? layerIndices;
      const mean = d.curves?.meanOverClasses ?? [];
      if (ctx.json) {
        ctx.printJson({ depth: d.depth, reinitialised: d.reinitialised, layers: layerIndices, meanOverClasses: mean, difference: d.difference });
        continue;
      }
      const maxAbs = d.difference.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      rows.push([d.depth, d.reinitialised.at(-1) ?? '(trained)', ...mean.map((v) => fixed(v)), fixed(maxAbs)]);
    }
    progress.done();
    if (!ctx.json) ctx.print(table(['DEPTH', 'LAST RE-INITIALISED', ...layerIndices.map((l) => `LAYER ${l}`), 'MAX |DIFF|'], rows));
  },
};
