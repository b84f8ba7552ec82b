/** `introspect predict|evaluate|averages|confidence`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AverageKind, ConfidenceMatrixResponse } from '../../../api/generated/introspect/v1/analysis';
import { EvaluateResponse, PredictResponse } from '../../../api/generated/introspect/v1/models';
import { UsageError, type ParsedArgs } from '../args';
import { num, str, type Command } from '../command';
import { percent, safeName, table } from '../format';
import { AVERAGE_FLAGS, ENGINE_FLAG, averageSpec, engineFlag, indexList } from './analysis-flags';
import { averageEntry, fixed } from '../../report/entries';
import { SPLIT_FLAG, splitFlag } from '../split';

function need(args: ParsedArgs, min: number, usage: string, max = min): string[] {
  if (args.positionals.length < min || args.positionals.length > max) throw new UsageError(`usage: ${usage}`);
  return args.positionals;
}

export const analysisCommands: Command[] = [
  {
    spec: {
      name: 'predict',
      usage: '<model> <image.png|jpg>...',
      summary: 'Classify local PNG/JPEG images (fitted to the model input by its preprocessing).',
      flags: { top: { type: 'number', arg: 'N', help: 'classes listed per image (default 5)' }, ...ENGINE_FLAG },
    },
    async run(args, ctx) {
      const [model, ...files] = need(args, 2, 'introspect predict <model> <image>...', Infinity);
      const encoded = await Promise.all(
        files.map((f) =>
          fs.promises.readFile(f).catch((err: Error) => {
            throw new UsageError(`cannot read ${f}: ${err.message}`);
          }),
        ),
      );
      const res = await ctx.client.predict(
        { model, encoded, top: num(args, 'top') ?? 5, engine: engineFlag(str(args, 'engine')) },
        ctx.callOpts(),
      );
      if (ctx.json) {
        ctx.printJson(PredictResponse.toJSON(res));
        return;
      }
      res.predictions.forEach((p, i) => {
        ctx.print(files[i]!);
        ctx.print(table(['CLASS', 'NAME', 'PROBABILITY', 'LOGIT'], p.top.map((s) => [s.classIndex, s.className, s.probability.toFixed(4), s.logit.toFixed(3)])));
        if (i < res.predictions.length - 1) ctx.print('');
      });
    },
  },
  {
    spec: {
      name: 'evaluate',
      usage: '<model> <dataset>',
      summary: 'Accuracy and loss of a model on a data set split, overall and per class.',
      flags: {
        ...SPLIT_FLAG,
        limit: { type: 'number', arg: 'N', help: 'at most this many images (default all)' },
        'batch-size': { type: 'number', arg: 'N', help: "images per forward pass (default: the server's)" },
        ...ENGINE_FLAG,
      },
    },
    async run(args, ctx) {
      const [model, dataset] = need(args, 2, 'introspect evaluate <model> <dataset>');
      const progress = ctx.progress('evaluate');
      let last: EvaluateResponse | undefined;
      for await (const msg of ctx.client.evaluate(
        {
          model,
          dataset,
          split: splitFlag(str(args, 'split')),
          limit: num(args, 'limit') ?? 0,
          batchSize: num(args, 'batch-size') ?? 0,
          engine: engineFlag(str(args, 'engine')),
        },
        ctx.callOpts(),
      )) {
        if (ctx.json) ctx.printJson(EvaluateResponse.toJSON(msg));
        if (msg.progress) progress.update(msg.progress.done, msg.progress.total);
        last = msg;
      }
      progress.done();
      const r = last?.result;
      if (ctx.json || !r) return;
      ctx.print(`accuracy ${percent(r.accuracy)} (${r.correct}/${r.count}), loss ${r.loss.toFixed(4)}, ${r.imagesPerSecond.toFixed(0)} images/s`);
      ctx.print('');
      ctx.print(
        table(
          ['CLASS', 'NAME', 'COUNT', 'CORRECT', 'ACCURACY', 'LOSS'],
          r.perClass.map((c) => [c.classIndex, c.className, c.count, c.correct, percent(c.accuracy), c.loss.toFixed(4)]),
        ),
      );
    },
  },
  {
    spec: {
      name: 'averages',
      usage: '<model> <dataset>',
      summary: 'Class-average images: writes one PNG per class and averages.json to --out.',
      flags: {
        out: { type: 'string', arg: 'DIR', help: 'output folder (required)' },
        classes: { type: 'string', arg: 'I,J,..', help: 'class indices (default all)' },
        ...AVERAGE_FLAGS,
        ...ENGINE_FLAG,
      },
    },
    async run(args, ctx) {
      const [model, dataset] = need(args, 2, 'introspect averages <model> <dataset> --out DIR');
      const out = str(args, 'out');
      if (!out) throw new UsageError('--out DIR is required');
      await fs.promises.mkdir(out, { recursive: true });
      const average = averageSpec(args);
      const steps = average.kind === AverageKind.AVERAGE_KIND_ACTIVATION_MAX;
      const progress = ctx.progress('averages');
      const summary: unknown[] = [];
      const rows: Array<Array<string | number>> = [];
      for await (const a of ctx.client.classAverages(
        {
          model,
          dataset,
          average,
          classes: indexList(args, 'classes'),
          png: true,
          engine: engineFlag(str(args, 'engine')),
        },
        ctx.callOpts(),
      )) {
        if (a.progress) progress.update(a.progress.done, a.progress.total);
        const file = `class-${a.classIndex}-${safeName(a.className)}.png`;
        if (a.image?.png.length) await fs.promises.writeFile(path.join(out, file), a.image.png);
        const entry = averageEntry(a, file);
        summary.push(entry);
        if (ctx.json) ctx.printJson(entry);
        else rows.push([a.classIndex, a.className, a.imagesUsed, fixed(a.meanConfidence), fixed(a.averageConfidence), a.predictedClass, ...(steps ? [a.steps] : []), file]);
      }
      progress.done();
      await fs.promises.writeFile(path.join(out, 'averages.json'), JSON.stringify(summary, null, 1) + '\n');
      if (!ctx.json) {
        ctx.print(table(['CLASS', 'NAME', 'IMAGES', 'MEAN CONF', 'AVG CONF', 'PREDICTED', ...(steps ? ['STEPS'] : []), 'FILE'], rows));
        ctx.print(`\nwrote ${rows.length} images and averages.json to ${out}`);
      }
    },
  },
  {
    spec: {
      name: 'confidence',
      usage: '<model> <dataset>',
      summary: 'The confidence matrix: softmax of the model on each class-average image (row = average of class r).',
      flags: { ...AVERAGE_FLAGS, ...ENGINE_FLAG },
    },
    async run(args, ctx) {
      const [model, dataset] = need(args, 2, 'introspect confidence <model> <dataset>');
      const res = await ctx.client.confidenceMatrix(
        { model, dataset, average: averageSpec(args), engine: engineFlag(str(args, 'engine')) },
        ctx.callOpts(),
      );
      if (ctx.json) {
        ctx.printJson(ConfidenceMatrixResponse.toJSON(res));
        return;
      }
      const names = res.classNames.length === res.classes ? res.classNames : Array.from({ length: res.classes }, (_, i) => String(i));
      const rows = Array.from({ length: res.n }, (_, r) => [
        names[r] ?? String(r),
        ...Array.from({ length: res.classes }, (_, c) => res.probabilities[r * res.classes + c]!.toFixed(2)),
      ]);
      ctx.print(table(['AVERAGE \\ PREDICTED', ...names.map((n) => n.slice(0, 8))], rows));
      if (res.diagonal.length > 0) {
        const mean = res.diagonal.reduce((a, b) => a + b, 0) / res.diagonal.length;
        ctx.print(`\nmean diagonal ${mean.toFixed(3)}`);
      }
    },
  },
];
