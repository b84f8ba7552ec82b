/** `introspect report`: the analyses of a model on a data set, over RPC, as report.html and summary.json. */
import { runReport, type MethodNumber, type ReportRequest } from '../../report/collect';
import { writeReport } from '../../report/write';
import { UsageError } from '../args';
import { bool, str, type Command } from '../command';
import { ATTRIBUTION_FLAGS, AVERAGE_FLAGS, ENGINE_FLAG, count, similarityRequest } from './analysis-flags';

export const reportCommand: Command = {
  spec: {
    name: 'report',
    summary:
      'Class averages, confidence matrix, similarity (methods 1 and 2, with the highest/lowest neurons) and optionally the sanity check, written as DIR/report.html and DIR/summary.json.',
    flags: {
      model: { type: 'string', arg: 'NAME', help: 'a loaded model (required)' },
      dataset: { type: 'string', arg: 'NAME', help: 'a registered data set (required)' },
      out: { type: 'string', arg: 'DIR', help: 'output folder (required)' },
      classes: { type: 'string', arg: 'I,J,..', help: 'class indices (default all)' },
      layers: { type: 'string', arg: 'L,..', help: 'conv layers for similarity (default all)' },
      methods: { type: 'string', arg: '1,2', help: 'similarity methods (default 1,2; the first fills report.html)' },
      metric: { type: 'string', arg: 'cosine|..', help: 'image similarity metric (default cosine)' },
      'rank-images': { type: 'number', arg: 'N', help: 'highest and lowest neurons shown per (class, layer) (default 8)' },
      sanity: { type: 'boolean', help: 'also run the sanity check (cascading re-initialisation)' },
      seed: { type: 'number', arg: 'N', help: 'sanity: seed of the re-initialisation (default 0)' },
      'max-depth': { type: 'number', arg: 'N', help: 'sanity: re-initialise at most the top N layers (default all)' },
      ...AVERAGE_FLAGS,
      ...ATTRIBUTION_FLAGS,
      ...ENGINE_FLAG,
    },
    details: 'Further similarity methods go to report-method-<m>.html; class-average PNGs to DIR/averages/.',
  },
  async run(args, ctx) {
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument '${args.positionals[0]}' (give --model, --dataset and --out)`);
    const model = str(args, 'model');
    const dataset = str(args, 'dataset');
    const out = str(args, 'out');
    if (!model || !dataset || !out) throw new UsageError('--model, --dataset and --out are required');
    const sim = similarityRequest(args, model, dataset);
    const methodsText = str(args, 'methods') ?? '1,2';
    const methods = methodsText.split(',').map((m) => {
      const v = m.trim();
      if (v !== '1' && v !== '2') throw new UsageError(`--methods: '${v}' is not a similarity method (1 or 2)`);
      return Number(v) as MethodNumber;
    });
    const request: ReportRequest = {
      model,
      dataset,
      average: sim.average,
      classes: sim.classes,
      layers: sim.layers,
      methods: [...new Set(methods)],
      metric: sim.metric,
      attribution: sim.attribution,
      rankImages: args.flags['rank-images'] !== undefined ? count(args, 'rank-images') : undefined,
      sanity: bool(args, 'sanity') ? { seed: count(args, 'seed'), maxDepth: count(args, 'max-depth') } : undefined,
      engine: sim.engine,
    };
    let bar = ctx.progress('averages');
    let stage = 'averages';
    const run = await runReport(ctx.client, request, {
      callOpts: ctx.callOpts(),
      onProgress: (s, done, total) => {
        if (s !== stage) {
          bar.done();
          bar = ctx.progress(s);
          stage = s;
        }
        bar.update(done, total);
      },
      onStageDone: (s) => {
        if (ctx.json) ctx.printJson({ stage: s, done: true });
      },
    });
    bar.done();
    const written = await writeReport(out, run);
    if (ctx.json) {
      ctx.printJson({ report: written.report, summary: written.summary, files: written.files, seconds: run.seconds });
      return;
    }
    for (const s of run.similarity) {
      const means = s.curves.meanOverClasses.map((v) => v.toFixed(3)).join(' ');
      ctx.print(`similarity method ${s.method}: mean over classes per layer ${means}${s.cached ? ' (cached)' : ''}`);
    }
    ctx.print(`wrote ${written.report} and ${written.summary} (${written.files.length} files) in ${run.seconds.toFixed(1)} s`);
  },
};
