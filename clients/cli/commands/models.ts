/** `introspect models load|upload|list|info|unload`. */
import * as fs from 'node:fs';
import { engineToJSON } from '../../../api/generated/introspect/v1/common';
import {
  ChannelOrder,
  Fit,
  ListModelsResponse,
  ModelFormat,
  ModelInfo,
  UnloadModelResponse,
  fitToJSON,
  modelFormatToJSON,
  type Preprocessing,
} from '../../../api/generated/introspect/v1/models';
import { UsageError, listFlag, numberListFlag, type FlagSpec, type ParsedArgs } from '../args';
import { str, num, type Command } from '../command';
import type { CliContext } from '../context';
import { bytes, shape, table } from '../format';

const PREPROCESSING_FLAGS: Record<string, FlagSpec> = {
  classes: { type: 'string', arg: 'A,B,..', help: 'class names, comma-separated' },
  scale: { type: 'number', arg: 'X', help: 'pixel scale (default 1/255)' },
  mean: { type: 'string', arg: 'M,..', help: 'per-channel mean after scaling' },
  std: { type: 'string', arg: 'S,..', help: 'per-channel std' },
  fit: { type: 'string', arg: 'resize|pad', help: 'how images are fitted to the input size' },
  'channel-order': { type: 'string', arg: 'rgb|bgr', help: 'channel order the model expects' },
};

function preprocessingFrom(args: ParsedArgs): Preprocessing | undefined {
  const mean = numberListFlag(args.flags.mean, 'mean');
  const std = numberListFlag(args.flags.std, 'std');
  const scale = num(args, 'scale');
  const fit = str(args, 'fit');
  const order = str(args, 'channel-order');
  if (mean.length === 0 && std.length === 0 && scale === undefined && !fit && !order) return undefined;
  if (fit && fit !== 'resize' && fit !== 'pad') throw new UsageError(`--fit must be resize or pad, not '${fit}'`);
  if (order && order !== 'rgb' && order !== 'bgr') throw new UsageError(`--channel-order must be rgb or bgr, not '${order}'`);
  return {
    scale,
    mean,
    std,
    fit: fit === 'pad' ? Fit.FIT_PAD : fit === 'resize' ? Fit.FIT_RESIZE : Fit.FIT_UNSPECIFIED,
    channelOrder:
      order === 'bgr' ? ChannelOrder.CHANNEL_ORDER_BGR : order === 'rgb' ? ChannelOrder.CHANNEL_ORDER_RGB : ChannelOrder.CHANNEL_ORDER_UNSPECIFIED,
  };
}

function formatFlag(v: string | undefined): ModelFormat {
  if (v === undefined) return ModelFormat.MODEL_FORMAT_UNSPECIFIED;
  if (v === 'onnx') return ModelFormat.MODEL_FORMAT_ONNX;
  if (v === 'tfjs') return ModelFormat.MODEL_FORMAT_TFJS_LAYERS;
  throw new UsageError(`--format must be onnx or tfjs, not '${v}'`);
}

function need(args: ParsedArgs, n: number, usage: string): string[] {
  if (args.positionals.length !== n) throw new UsageError(`usage: ${usage}`);
  return args.positionals;
}

/**
 * What the BN column can say: the server reports a batch-norm only where the file has a
 * BatchNormalization node after the conv (folded in at load). Exporters such as PyTorch's fold
 * batch-norm into the conv weights already, and then the file holds no trace of it.
 */
export const BN_NOTE =
  "BN: 'folded' = a BatchNormalization node after the conv, folded into it at load; '–' = none in the file " +
  "(a model exported with batch-norm already folded into its conv weights, PyTorch's default, shows '–' too).";

function printInfo(ctx: CliContext, m: ModelInfo): void {
  if (ctx.json) {
    ctx.printJson(ModelInfo.toJSON(m));
    return;
  }
  const p = m.preprocessing;
  ctx.print(`name         ${m.name}`);
  ctx.print(`format       ${modelFormatToJSON(m.format)}`);
  ctx.print(`sha256       ${m.sha256}`);
  ctx.print(`size         ${bytes(m.sizeBytes)}`);
  ctx.print(`input        ${m.input?.name ?? ''} ${shape(m.input?.shape ?? [])}`);
  ctx.print(`output       ${m.output?.name ?? ''} ${shape(m.output?.shape ?? [])}`);
  ctx.print(`parameters   ${m.parameters.toLocaleString('en-US')}`);
  if (p) {
    ctx.print(
      `preprocess   scale ${p.scale !== undefined ? +p.scale.toPrecision(6) : '1/255'}, mean [${p.mean.map((x) => +x.toPrecision(4)).join(', ')}], std [${p.std.map((x) => +x.toPrecision(4)).join(', ')}], ${fitToJSON(p.fit)}`,
    );
  }
  ctx.print(`classes      ${m.classNames.join(', ')}`);
  ctx.print(`ops          ${m.ops.join(', ')}`);
  ctx.print(`engines      ${m.engines.map((e) => `${engineToJSON(e.engine)} (${e.device}${e.note ? `; ${e.note}` : ''})`).join(', ')}`);
  ctx.print('');
  ctx.print(
    table(
      ['LAYER', 'NAME', 'CHANNELS', 'OUTPUT', 'BN', 'ACTIVATION'],
      m.convLayers.map((l) => [l.index, l.name, l.channels, shape(l.outputShape), l.batchNormFolded ? 'folded' : '–', l.activation || '–']),
    ),
  );
  ctx.print(BN_NOTE);
  if (m.denseLayers.length > 0) {
    ctx.print('');
    ctx.print(table(['DENSE', 'NAME', 'UNITS'], m.denseLayers.map((d) => [d.index, d.name, d.units])));
  }
}

export const modelCommands: Command[] = [
  {
    spec: {
      name: 'models load',
      usage: '<name> <path>',
      summary: 'Load a model file found under the server\'s model root (ONNX, or a tfjs model.json).',
      flags: {
        sidecar: { type: 'string', arg: 'PATH', help: 'JSON sidecar with preprocessing and class names (relative to the model root)' },
        format: { type: 'string', arg: 'onnx|tfjs', help: 'the file format (default: detected)' },
        ...PREPROCESSING_FLAGS,
      },
    },
    async run(args, ctx) {
      const [name, p] = need(args, 2, 'introspect models load <name> <path>');
      const info = await ctx.client.loadModel(
        {
          name,
          path: p,
          format: formatFlag(str(args, 'format')),
          sidecarPath: str(args, 'sidecar') ?? '',
          classNames: listFlag(args.flags.classes),
          preprocessing: preprocessingFrom(args),
        },
        ctx.callOpts(),
      );
      printInfo(ctx, info);
    },
  },
  {
    spec: {
      name: 'models upload',
      usage: '<name> <file.onnx>',
      summary: 'Upload a local ONNX file to the server (streamed in chunks).',
      flags: {
        'chunk-bytes': { type: 'number', arg: 'N', help: 'bytes per message (default 1 MiB)' },
        ...PREPROCESSING_FLAGS,
      },
    },
    async run(args, ctx) {
      const [name, file] = need(args, 2, 'introspect models upload <name> <file.onnx>');
      let data: Buffer;
      try {
        data = await fs.promises.readFile(file!);
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
      }
      const info = await ctx.client.uploadModel(
        {
          name,
          format: ModelFormat.MODEL_FORMAT_ONNX,
          classNames: listFlag(args.flags.classes),
          preprocessing: preprocessingFrom(args),
          sizeBytes: data.byteLength,
        },
        data,
        { ...ctx.callOpts(), chunkBytes: num(args, 'chunk-bytes') },
      );
      printInfo(ctx, info);
    },
  },
  {
    spec: { name: 'models list', summary: 'List the loaded models.', flags: {} },
    async run(args, ctx) {
      need(args, 0, 'introspect models list');
      const models = await ctx.client.listModels(ctx.callOpts());
      if (ctx.json) {
        ctx.printJson(ListModelsResponse.toJSON({ models }));
        return;
      }
      if (models.length === 0) {
        ctx.print('no models loaded');
        return;
      }
      ctx.print(
        table(
          ['NAME', 'FORMAT', 'INPUT', 'CLASSES', 'CONV', 'PARAMETERS', 'SIZE', 'SHA256'],
          models.map((m) => [
            m.name,
            m.format === ModelFormat.MODEL_FORMAT_ONNX ? 'onnx' : 'tfjs',
            shape(m.input?.shape ?? []),
            m.classNames.length,
            m.convLayers.length,
            m.parameters.toLocaleString('en-US'),
            bytes(m.sizeBytes),
            m.sha256.slice(0, 12),
          ]),
        ),
      );
    },
  },
  {
    spec: { name: 'models info', usage: '<name>', summary: 'Describe a loaded model: input, classes, conv layers in order.', flags: {} },
    async run(args, ctx) {
      const [name] = need(args, 1, 'introspect models info <name>');
      printInfo(ctx, await ctx.client.getModel(name!, ctx.callOpts()));
    },
  },
  {
    spec: { name: 'models unload', usage: '<name>', summary: 'Unload a model and free what the engines hold for it.', flags: {} },
    async run(args, ctx) {
      const [name] = need(args, 1, 'introspect models unload <name>');
      const unloaded = await ctx.client.unloadModel(name!, ctx.callOpts());
      if (ctx.json) ctx.printJson(UnloadModelResponse.toJSON({ unloaded }));
      else ctx.print(`unloaded ${name}`);
    },
  },
];
