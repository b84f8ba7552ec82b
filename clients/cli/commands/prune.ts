/** `introspect prune` and `introspect probes`: validation by pruning and per-layer linear probes (SPEC §4). */
import { PruneCriterion, type SimilarityRequest } from '../../../api/generated/introspect/v1/analysis';
import { UsageError, listFlag, numberListFlag, type ParsedArgs } from '../args';
import { num, str, type Command } from '../command';
import type { CliContext } from '../context';
import { table } from '../format';
import { ENGINE_FLAG, count, engineFlag, indexList, similarityMethodFlag } from './analysis-flags';
import { SPLIT_FLAG, splitFlag } from '../split';
import { SERVERS_FLAGS, shardedClientFor } from '../../sharded-cli';

const CRITERIA: Record<string, PruneCriterion> = {
  top: PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP,
  bottom: PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM,
  random: PruneCriterion.PRUNE_CRITERION_RANDOM,
  l1: PruneCriterion.PRUNE_CRITERION_L1,
  apoz: PruneCriterion.PRUNE_CRITERION_APOZ,
};
const CRITERION_NAMES = Object.fromEntries(Object.entries(CRITERIA).map(([k, v]) => [v, k])) as Record<number, string>;

function modelAndDataset(args: ParsedArgs, usage: string): [string, string] {
  if (args.positionals.length !== 2) throw new UsageError(`usage: ${usage}`);
  return args.positionals as [string, string];
}

function criteriaFlag(args: ParsedArgs): PruneCriterion[] {
  return listFlag(args.flags.criteria).map((c) => {
    const v = CRITERIA[c];
    if (v === undefined) throw new UsageError(`--criteria: '${c}' is not one of ${Object.keys(CRITERIA).join(', ')}`);
    return v;
  });
}

const pct = (x: number): string => (100 * x).toFixed(1);

export const pruneCommand: Command = {
  spec: {
    name: 'prune',
    usage: '<model> <dataset>',
    summary: 'Accuracy after zeroing the conv channels a criterion picks (similarity top/bottom, random, L1, APoZ), per layer and fraction.',
    flags: {
      layers: { type: 'string', arg: 'L,..', help: 'conv layer indices (default all)' },
      fractions: { type: 'string', arg: 'F,..', help: 'fractions of a layer\'s channels to zero, each in (0, 1) (default 0.4)' },
      criteria: { type: 'string', arg: 'C,..', help: 'top, bottom, random, l1, apoz (default all)' },
      seeds: { type: 'number', arg: 'N', help: 'random: seeds averaged (default 3)' },
      limit: { type: 'number', arg: 'N', help: 'evaluate at most this many images (default all)' },
      ...SPLIT_FLAG,
      'apoz-images': { type: 'number', arg: 'N', help: 'train images for APoZ (default 1000)' },
      class: { type: 'number', arg: 'I', help: 'rank by this class\'s similarity (default: the mean over classes)' },
      classes: { type: 'string', arg: 'I,J,..', help: 'classes whose similarity is computed (default all)' },
      method: { type: 'string', arg: '1|2', help: 'similarity method: 1 = vs the class average (default), 2 = vs the class logit GBP' },
      ...ENGINE_FLAG,
      ...SERVERS_FLAGS,
    },
    details: '--json prints the baseline, then one object per (layer, criterion, fraction).',
  },
  async run(args, ctx) {
    const [model, dataset] = modelAndDataset(args, 'introspect prune <model> <dataset>');
    const engine = engineFlag(str(args, 'engine'));
    const layers = indexList(args, 'layers');
    const similarity: Partial<SimilarityRequest> = { model, dataset, layers, classes: indexList(args, 'classes'), method: similarityMethodFlag(str(args, 'method')), engine };
    const classIndex = num(args, 'class');
    if (classIndex !== undefined && (!Number.isInteger(classIndex) || classIndex < 0)) throw new UsageError(`--class must be a class index, got ${classIndex}`);
    const progress = ctx.progress('prune');
    const rows: Array<Array<string | number>> = [];
    let baseline: number | undefined;
    const sharded = shardedClientFor(args, ctx);
    try {
      for await (const m of (sharded ?? ctx.client).prune(
        {
          model,
          dataset,
          split: splitFlag(str(args, 'split')),
          layers,
          fractions: numberListFlag(args.flags.fractions, 'fractions'),
          criteria: criteriaFlag(args),
          similarity,
          classIndex,
          randomSeeds: count(args, 'seeds'),
          limit: count(args, 'limit'),
          apozImages: count(args, 'apoz-images'),
          engine,
        },
        ctx.callOpts(),
      )) {
        if (m.progress) progress.update(m.progress.done, m.progress.total);
        if (baseline === undefined) {
          baseline = m.baselineAccuracy;
          if (ctx.json) ctx.printJson({ baselineAccuracy: baseline });
        }
        const r = m.result;
        if (!r) continue;
        const criterion = CRITERION_NAMES[r.criterion] ?? String(r.criterion);
        if (ctx.json) ctx.printJson({ ...r, criterion });
        else rows.push([r.layer, criterion, r.fraction.toFixed(2), r.seeds > 1 ? `${pct(r.accuracy)}±${pct(r.accuracyStd)}` : pct(r.accuracy), r.pruned.length]);
      }
    } finally {
      sharded?.close();
    }
    progress.done();
    if (!ctx.json) {
      ctx.print(`baseline accuracy ${pct(baseline ?? 0)}%`);
      ctx.print(table(['LAYER', 'CRITERION', 'FRACTION', 'ACCURACY %', 'PRUNED'], rows));
    }
  },
};

/** --iterations, or its deprecated alias --epochs (with a warning on stderr); 0 = the server's default. */
function iterationsFlag(args: ParsedArgs, ctx: CliContext): number {
  if (args.flags.epochs !== undefined) {
    if (args.flags.iterations !== undefined) throw new UsageError('give --iterations only (--epochs is its deprecated name)');
    ctx.io.stderr('introspect probes: --epochs is deprecated and will go: it sets L-BFGS iterations, so use --iterations\n');
    return count(args, 'epochs');
  }
  return count(args, 'iterations');
}

export const probesCommand: Command = {
  spec: {
    name: 'probes',
    usage: '<model> <dataset>',
    summary: 'Linear probes: a logistic-regression head on each conv layer\'s pooled features, its test accuracy beside the full model\'s.',
    flags: {
      layers: { type: 'string', arg: 'L,..', help: 'conv layer indices (default all)' },
      'train-limit': { type: 'number', arg: 'N', help: 'train images used (default all)' },
      'test-limit': { type: 'number', arg: 'N', help: 'test images used (default all)' },
      iterations: { type: 'number', arg: 'N', help: 'L-BFGS iterations fitting each head (default 30)' },
      epochs: { type: 'number', arg: 'N', help: 'deprecated name of --iterations (it never counted epochs)' },
      l2: { type: 'number', arg: 'X', help: 'L2 penalty (default 1e-4)' },
      ...ENGINE_FLAG,
    },
    details: '--json prints one object per layer.',
  },
  async run(args, ctx) {
    const [model, dataset] = modelAndDataset(args, 'introspect probes <model> <dataset>');
    const iterations = iterationsFlag(args, ctx);
    const l2 = num(args, 'l2') ?? 0;
    if (!(l2 >= 0)) throw new UsageError(`--l2 must be >= 0, got ${l2}`);
    const progress = ctx.progress('probes');
    const rows: Array<Array<string | number>> = [];
    let modelAccuracy = 0;
    for await (const m of ctx.client.layerProbes(
      {
        model,
        dataset,
        layers: indexList(args, 'layers'),
        trainLimit: count(args, 'train-limit'),
        testLimit: count(args, 'test-limit'),
        epochs: iterations,
        l2,
        engine: engineFlag(str(args, 'engine')),
      },
      ctx.callOpts(),
    )) {
      if (m.progress) progress.update(m.progress.done, m.progress.total);
      const r = m.result;
      if (!r) continue;
      modelAccuracy = m.modelAccuracy;
      if (ctx.json) ctx.printJson({ ...r, modelAccuracy });
      else rows.push([r.layer, r.features, pct(r.trainAccuracy), pct(r.testAccuracy)]);
    }
    progress.done();
    if (!ctx.json) {
      ctx.print(table(['LAYER', 'FEATURES', 'TRAIN %', 'TEST %'], rows));
      ctx.print(`full model on the same test images: ${pct(modelAccuracy)}%`);
    }
  },
};
