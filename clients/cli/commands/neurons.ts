/** `introspect neurons`: attribution images of conv channels (and class logits), one PNG grid per layer. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InputSpec, NeuronImage } from '../../../api/generated/introspect/v1/analysis';
import { decodePixels, gridPng } from '../../../services/images/png';
import { UsageError, type ParsedArgs } from '../args';
import { num, str, type Command } from '../command';
import { table } from '../format';
import {
  ATTRIBUTION_FLAGS,
  AVERAGE_FLAGS,
  ENGINE_FLAG,
  WRAPPER_FLAGS,
  attributionSpec,
  averageSpec,
  count,
  engineFlag,
  indexList,
  layerSelections,
  wrapperSpecs,
} from './analysis-flags';
import { DEFAULT_SPLIT, splitFlag } from '../split';

const DEFAULT_COLUMNS = 8;

/** The input image the flags name: exactly one of --average, --image, --sample. */
async function inputFrom(args: ParsedArgs): Promise<{ spec: InputSpec; describe: Record<string, unknown> }> {
  const average = num(args, 'average');
  const image = str(args, 'image');
  const sample = num(args, 'sample');
  const given = [average !== undefined, image !== undefined, sample !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError('name the input image with exactly one of --average CLASS, --image FILE or --sample INDEX');
  const dataset = str(args, 'dataset');
  if (image !== undefined) {
    const bytes = await fs.promises.readFile(image).catch((err: Error) => {
      throw new UsageError(`cannot read ${image}: ${err.message}`);
    });
    return { spec: { source: { $case: 'encoded', value: bytes } }, describe: { image } };
  }
  if (!dataset) throw new UsageError('--dataset D is required with --average and --sample');
  const index = (average ?? sample)!;
  if (!Number.isInteger(index) || index < 0) throw new UsageError(`--${average !== undefined ? 'average' : 'sample'} needs an index, got ${index}`);
  if (average !== undefined) {
    const spec = averageSpec(args);
    return { spec: { source: { $case: 'classAverage', value: { dataset, classIndex: index, average: spec } } }, describe: { dataset, classAverage: index } };
  }
  const split = splitFlag(str(args, 'split'));
  return { spec: { source: { $case: 'sample', value: { dataset, split, index } } }, describe: { dataset, sample: index, split: str(args, 'split') ?? DEFAULT_SPLIT } };
}

interface Group {
  layer: number;
  neurons: number[];
  allZero: number[];
  pngs: Buffer[];
}

export const neuronsCommand: Command = {
  spec: {
    name: 'neurons',
    usage: '<model>',
    summary: 'Neuron images (guided backprop by default) of conv channels on one input: writes one PNG grid per layer and neurons.json to --out.',
    flags: {
      out: { type: 'string', arg: 'DIR', help: 'output folder (required)' },
      average: { type: 'number', arg: 'CLASS', help: 'input: the class-average image of this class of --dataset' },
      image: { type: 'string', arg: 'FILE', help: 'input: a local PNG or JPEG' },
      sample: { type: 'number', arg: 'INDEX', help: `input: this sample of --dataset (--split, default ${DEFAULT_SPLIT})` },
      dataset: { type: 'string', arg: 'NAME', help: 'data set of --average / --sample' },
      layer: {
        type: 'string',
        arg: 'L[:A-B|:i,j]',
        multiple: true,
        help: 'conv layer and channels (repeatable; default every channel of every layer)',
      },
      classes: { type: 'string', arg: 'I,J,..', help: 'also the images of these class logits' },
      cols: { type: 'number', arg: 'N', help: `grid columns (default ${DEFAULT_COLUMNS})` },
      ...ATTRIBUTION_FLAGS,
      ...WRAPPER_FLAGS,
      ...AVERAGE_FLAGS,
      ...ENGINE_FLAG,
    },
    details: 'Grids are layer-<L>.png (channels in the order listed in neurons.json) and classes.png; images are normalised one by one (grey = 0).',
  },
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError('usage: introspect neurons <model> --out DIR (--average CLASS | --image FILE | --sample INDEX)');
    const model = args.positionals[0]!;
    const out = str(args, 'out');
    if (!out) throw new UsageError('--out DIR is required');
    const cols = count(args, 'cols') || DEFAULT_COLUMNS;
    const { spec, describe } = await inputFrom(args);
    const request = {
      model,
      input: spec,
      layers: layerSelections(args.flags.layer),
      classes: indexList(args, 'classes'),
      attribution: { ...attributionSpec(args), wrappers: wrapperSpecs(args) },
      engine: engineFlag(str(args, 'engine')),
      png: true,
      omitTensor: true,
    };
    await fs.promises.mkdir(out, { recursive: true });
    const progress = ctx.progress('neurons');
    const groups = new Map<number, Group>();
    let received = 0;
    for await (const n of ctx.client.neuronImages(request, ctx.callOpts()) as AsyncIterable<NeuronImage>) {
      if (n.progress) progress.update(n.progress.done, n.progress.total);
      let g = groups.get(n.layer);
      if (!g) groups.set(n.layer, (g = { layer: n.layer, neurons: [], allZero: [], pngs: [] }));
      g.neurons.push(n.neuron);
      if (n.allZero) g.allZero.push(n.neuron);
      g.pngs.push(n.image?.png ?? Buffer.alloc(0));
      received++;
    }
    progress.done();
    const index: Array<Record<string, unknown>> = [];
    for (const g of groups.values()) {
      const file = g.layer < 0 ? 'classes.png' : `layer-${g.layer}.png`;
      const images = g.pngs.map((p, i) => decodePixels(p, `image of neuron ${g.neurons[i]}`));
      await fs.promises.writeFile(path.join(out, file), gridPng(images, cols));
      const entry = g.layer < 0
        ? { kind: 'class_logit', classes: g.neurons, allZero: g.allZero, file, columns: cols }
        : { kind: 'conv', layer: g.layer, neurons: g.neurons, allZero: g.allZero, file, columns: cols };
      index.push(entry);
      if (ctx.json) ctx.printJson(entry);
    }
    const attribution = str(args, 'attribution') ?? 'gbp';
    const wrappers = request.attribution.wrappers.map((w) =>
      w.wrapper?.$case === 'smoothgrad'
        ? { smoothgrad: { samples: w.wrapper.value.samples, noise: num(args, 'noise') ?? 'default', seed: w.wrapper.value.seed, form: str(args, 'smoothgrad-form') ?? 'mean' } }
        : { inputXGradient: true },
    );
    await fs.promises.writeFile(
      path.join(out, 'neurons.json'),
      JSON.stringify({ model, input: describe, attribution, objective: str(args, 'objective') ?? 'abs', wrappers, images: received, grids: index }, null, 1) + '\n',
    );
    if (!ctx.json) {
      ctx.print(
        table(
          ['LAYER', 'IMAGES', 'ALL-ZERO', 'FILE'],
          [...groups.values()].map((g) => [g.layer < 0 ? 'logits' : g.layer, g.neurons.length, g.allZero.length, g.layer < 0 ? 'classes.png' : `layer-${g.layer}.png`]),
        ),
      );
      ctx.print(`\nwrote ${groups.size} grid${groups.size === 1 ? '' : 's'} (${received} images) and neurons.json to ${out}`);
    }
  },
};
