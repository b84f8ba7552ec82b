/** `introspect datasets register|list|info|samples|unregister`. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Split } from '../../../api/generated/introspect/v1/common';
import {
  DatasetFormat,
  DatasetInfo,
  ListDatasetsResponse,
  Sample,
  UnregisterDatasetResponse,
  datasetFormatToJSON,
} from '../../../api/generated/introspect/v1/datasets';
import { UsageError, listFlag, numberListFlag, type ParsedArgs } from '../args';
import { num, str, type Command } from '../command';
import type { CliContext } from '../context';
import { SPLIT_FLAG, splitFlag } from '../split';
import { shape, table } from '../format';

export { splitFlag } from '../split';

function formatFlag(v: string | undefined): DatasetFormat {
  switch (v) {
    case undefined:
      return DatasetFormat.DATASET_FORMAT_UNSPECIFIED;
    case 'idx':
      return DatasetFormat.DATASET_FORMAT_IDX;
    case 'cifar10':
      return DatasetFormat.DATASET_FORMAT_CIFAR10;
    case 'image-folder':
      return DatasetFormat.DATASET_FORMAT_IMAGE_FOLDER;
    default:
      throw new UsageError(`--format must be idx, cifar10 or image-folder, not '${v}'`);
  }
}

function need(args: ParsedArgs, n: number, usage: string): string[] {
  if (args.positionals.length !== n) throw new UsageError(`usage: ${usage}`);
  return args.positionals;
}

const splitName = (s: Split): string => (s === Split.SPLIT_TRAIN ? 'train' : 'test');

function printInfo(ctx: CliContext, d: DatasetInfo): void {
  if (ctx.json) {
    ctx.printJson(DatasetInfo.toJSON(d));
    return;
  }
  ctx.print(`name      ${d.name}`);
  ctx.print(`format    ${datasetFormatToJSON(d.format)}`);
  ctx.print(`path      ${d.path}`);
  ctx.print(`images    ${shape(d.imageShape)} (H, W, C)`);
  ctx.print(`classes   ${d.classNames.join(', ')}`);
  for (const s of d.splits) ctx.print(`${splitName(s.split).padEnd(10)}${s.count} images (per class ${s.perClass.join(' ')})`);
}

export const datasetCommands: Command[] = [
  {
    spec: {
      name: 'datasets register',
      usage: '<name> <path>',
      summary: 'Register a data set: a folder under the server\'s data root, or builtin:mnist / builtin:fashion-mnist.',
      flags: {
        format: { type: 'string', arg: 'idx|cifar10|image-folder', help: 'the layout (default: detected)' },
        classes: { type: 'string', arg: 'A,B,..', help: 'class names, comma-separated' },
        'train-prefix': { type: 'string', arg: 'P', help: 'IDX: train file prefix (default train)' },
        'test-prefix': { type: 'string', arg: 'P', help: 'IDX: test file prefix (default t10k)' },
      },
    },
    async run(args, ctx) {
      const [name, p] = need(args, 2, 'introspect datasets register <name> <path>');
      const info = await ctx.client.registerDataset(
        {
          name,
          path: p,
          format: formatFlag(str(args, 'format')),
          classNames: listFlag(args.flags.classes),
          trainPrefix: str(args, 'train-prefix') ?? '',
          testPrefix: str(args, 'test-prefix') ?? '',
        },
        ctx.callOpts(),
      );
      printInfo(ctx, info);
    },
  },
  {
    spec: { name: 'datasets list', summary: 'List the registered data sets.', flags: {} },
    async run(args, ctx) {
      need(args, 0, 'introspect datasets list');
      const datasets = await ctx.client.listDatasets(ctx.callOpts());
      if (ctx.json) {
        ctx.printJson(ListDatasetsResponse.toJSON({ datasets }));
        return;
      }
      if (datasets.length === 0) {
        ctx.print('no datasets registered');
        return;
      }
      ctx.print(
        table(
          ['NAME', 'FORMAT', 'IMAGES', 'CLASSES', 'SPLITS', 'PATH'],
          datasets.map((d) => [
            d.name,
            datasetFormatToJSON(d.format).replace('DATASET_FORMAT_', '').toLowerCase(),
            shape(d.imageShape),
            d.classNames.length,
            d.splits.map((s) => `${splitName(s.split)} ${s.count}`).join(', '),
            d.path,
          ]),
        ),
      );
    },
  },
  {
    spec: { name: 'datasets info', usage: '<name>', summary: 'Describe a registered data set.', flags: {} },
    async run(args, ctx) {
      const [name] = need(args, 1, 'introspect datasets info <name>');
      printInfo(ctx, await ctx.client.getDataset(name!, ctx.callOpts()));
    },
  },
  {
    spec: { name: 'datasets unregister', usage: '<name>', summary: 'Forget a registered data set.', flags: {} },
    async run(args, ctx) {
      const [name] = need(args, 1, 'introspect datasets unregister <name>');
      const unregistered = await ctx.client.unregisterDataset(name!, ctx.callOpts());
      if (ctx.json) ctx.printJson(UnregisterDatasetResponse.toJSON({ unregistered }));
      else ctx.print(`unregistered ${name}`);
    },
  },
  {
    spec: {
      name: 'datasets samples',
      usage: '<name>',
      summary: 'Fetch raw samples (index, label, pixels); with --out, write them as PNG files.',
      flags: {
        ...SPLIT_FLAG,
        offset: { type: 'number', arg: 'N', help: 'first sample index (default 0)' },
        limit: { type: 'number', arg: 'N', help: 'how many samples (default 10)' },
        indices: { type: 'string', arg: 'I,J,..', help: 'explicit sample indices instead of offset/limit' },
        out: { type: 'string', arg: 'DIR', help: 'write <split>-<index>-label<label>.png files here' },
      },
    },
    async run(args, ctx) {
      const [name] = need(args, 1, 'introspect datasets samples <name>');
      const out = str(args, 'out');
      const indices = numberListFlag(args.flags.indices, 'indices');
      const split = splitFlag(str(args, 'split'));
      if (out) await fs.promises.mkdir(out, { recursive: true });
      const progress = ctx.progress('samples');
      const rows: Array<Array<string | number>> = [];
      for await (const s of ctx.client.getSamples(
        { dataset: name, split, offset: num(args, 'offset') ?? 0, limit: indices.length ? 0 : (num(args, 'limit') ?? 10), indices, png: !!out },
        ctx.callOpts(),
      )) {
        if (s.progress) progress.update(s.progress.done, s.progress.total);
        let file = '';
        if (out) {
          file = path.join(out, `${splitName(split === Split.SPLIT_TRAIN ? split : Split.SPLIT_TEST)}-${s.index}-label${s.label}.png`);
          await fs.promises.writeFile(file, s.png);
        }
        if (ctx.json) {
          const j = Sample.toJSON(out ? { ...s, png: Buffer.alloc(0) } : s) as Record<string, unknown>;
          ctx.printJson(out ? { ...j, file } : j);
        } else rows.push([s.index, s.label, shape(s.pixels?.shape ?? []), file]);
      }
      progress.done();
      if (!ctx.json) ctx.print(table(['INDEX', 'LABEL', 'SHAPE', 'FILE'], rows));
    },
  },
];
