/** `introspect examples`: the data set images that activate each channel of a conv layer most. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DatasetExample } from '../../../api/generated/introspect/v1/analysis';
import { decodePixels, gridPng } from '../../../services/images/png';
import { UsageError } from '../args';
import { num, str, type Command } from '../command';
import { table } from '../format';
import { ENGINE_FLAG, count, engineFlag, indexList } from './analysis-flags';
import { SPLIT_FLAG, splitFlag } from '../split';

/** A label as the table shows it: the class name and its number ("cat (3)"), or the number where the name is just that. */
export function classLabel(label: number, names: string[]): string {
  const name = names[label];
  return name === undefined || name === String(label) ? String(label) : `${name} (${label})`;
}

export const examplesCommand: Command = {
  spec: {
    name: 'examples',
    usage: '<model> <dataset>',
    summary: 'Dataset examples: the K images with the highest mean activation of each channel of a conv layer.',
    flags: {
      layer: { type: 'number', arg: 'L', help: 'conv layer index (required)' },
      channels: { type: 'string', arg: 'I,J,..', help: 'channels of the layer (default all)' },
      k: { type: 'number', arg: 'K', help: 'examples per channel (default 9)' },
      limit: { type: 'number', arg: 'N', help: 'scan at most this many images (default all)' },
      ...SPLIT_FLAG,
      out: { type: 'string', arg: 'DIR', help: 'also write one PNG grid per channel and examples.json here' },
      cols: { type: 'number', arg: 'N', help: 'grid columns (default: K)' },
      ...ENGINE_FLAG,
    },
  },
  async run(args, ctx) {
    if (args.positionals.length !== 2) throw new UsageError('usage: introspect examples <model> <dataset> --layer L');
    const [model, dataset] = args.positionals as [string, string];
    const layer = num(args, 'layer');
    if (layer === undefined || !Number.isInteger(layer) || layer < 0) throw new UsageError('--layer L (a conv layer index) is required');
    const out = str(args, 'out');
    const k = count(args, 'k');
    if (out) await fs.promises.mkdir(out, { recursive: true });
    const names = (await ctx.client.getDataset(dataset, ctx.callOpts())).classNames;
    const progress = ctx.progress('examples');
    const byChannel = new Map<number, DatasetExample[]>();
    const rows: Array<Array<string | number>> = [];
    for await (const e of ctx.client.datasetExamples(
      {
        model,
        dataset,
        split: splitFlag(str(args, 'split')),
        layer,
        channels: indexList(args, 'channels'),
        k,
        limit: count(args, 'limit'),
        png: !!out,
        engine: engineFlag(str(args, 'engine')),
      },
      ctx.callOpts(),
    )) {
      if (e.progress) progress.update(e.progress.done, e.progress.total);
      byChannel.set(e.neuron, [...(byChannel.get(e.neuron) ?? []), e]);
      const entry = { layer: e.layer, neuron: e.neuron, rank: e.rank, index: e.index, label: e.label, className: names[e.label] ?? String(e.label), activation: e.activation };
      if (ctx.json) ctx.printJson(entry);
      else rows.push([e.neuron, e.rank, e.index, classLabel(e.label, names), e.activation.toFixed(4)]);
    }
    progress.done();
    if (out) {
      const channels: Array<Record<string, unknown>> = [];
      for (const [neuron, list] of byChannel) {
        const file = `layer-${layer}-channel-${neuron}.png`;
        const images = list.map((e) => decodePixels(e.png, `example ${e.index}`));
        await fs.promises.writeFile(path.join(out, file), gridPng(images, count(args, 'cols') || list.length));
        channels.push({
          neuron,
          file,
          examples: list.map((e) => ({ rank: e.rank, index: e.index, label: e.label, className: names[e.label] ?? String(e.label), activation: e.activation })),
        });
      }
      await fs.promises.writeFile(path.join(out, 'examples.json'), JSON.stringify({ model, dataset, layer, channels }, null, 1) + '\n');
    }
    if (!ctx.json) {
      ctx.print(table(['CHANNEL', 'RANK', 'INDEX', 'CLASS', 'ACTIVATION'], rows));
      if (out) ctx.print(`\nwrote ${byChannel.size} grid${byChannel.size === 1 ? '' : 's'} and examples.json to ${out}`);
    }
  },
};
