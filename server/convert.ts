/**
 * Wire ↔ domain conversions for the handlers: enums, preprocessing, model and dataset descriptions.
 * Validation errors name the request field.
 */
import { Engine as EngineEnum, Split } from '../api/generated/introspect/v1/common';
import { DatasetFormat, type DatasetInfo } from '../api/generated/introspect/v1/datasets';
import {
  ChannelOrder,
  Fit,
  ModelFormat,
  type ModelInfo,
  type Preprocessing,
} from '../api/generated/introspect/v1/models';
import type { DatasetFormatName, DatasetSummary, SplitName } from '../services/data/dataset';
import type { PreprocessSpec } from '../services/data/preprocessing';
import { engineRegistry } from '../services/engines';
import type { EngineKind, EngineStatus } from '../services/engines/engine';
import { invalidArgument } from '../services/errors';
import type { ModelDescription } from '../services/models/info';
import type { ModelFormatName } from '../services/models/model';
import { DEFAULT_SPLIT } from '../services/jobs/defaults';

/** A required string field. */
export function requireName(value: string, field: string): string {
  if (!value || value.trim() === '') throw invalidArgument(`${field} is required`);
  return value;
}

export function modelFormatFromWire(f: ModelFormat, field = 'format'): ModelFormatName | undefined {
  switch (f) {
    case ModelFormat.MODEL_FORMAT_UNSPECIFIED:
      return undefined;
    case ModelFormat.MODEL_FORMAT_ONNX:
      return 'onnx';
    case ModelFormat.MODEL_FORMAT_TFJS_LAYERS:
      return 'tfjs-layers';
    default:
      throw invalidArgument(`${field}: unknown model format ${String(f)}`);
  }
}

export function modelFormatToWire(f: ModelFormatName): ModelFormat {
  return f === 'onnx' ? ModelFormat.MODEL_FORMAT_ONNX : ModelFormat.MODEL_FORMAT_TFJS_LAYERS;
}

export function datasetFormatFromWire(f: DatasetFormat, field = 'format'): DatasetFormatName | undefined {
  switch (f) {
    case DatasetFormat.DATASET_FORMAT_UNSPECIFIED:
      return undefined;
    case DatasetFormat.DATASET_FORMAT_IDX:
      return 'idx';
    case DatasetFormat.DATASET_FORMAT_CIFAR10:
      return 'cifar10';
    case DatasetFormat.DATASET_FORMAT_IMAGE_FOLDER:
      return 'image-folder';
    default:
      throw invalidArgument(`${field}: unknown dataset format ${String(f)}`);
  }
}

export function datasetFormatToWire(f: DatasetFormatName): DatasetFormat {
  switch (f) {
    case 'idx':
      return DatasetFormat.DATASET_FORMAT_IDX;
    case 'cifar10':
      return DatasetFormat.DATASET_FORMAT_CIFAR10;
    case 'image-folder':
      return DatasetFormat.DATASET_FORMAT_IMAGE_FOLDER;
  }
}

/** A request's split; unspecified is DEFAULT_SPLIT (services/jobs/defaults.ts), the one place it is resolved. */
export function splitFromWire(s: Split, field = 'split'): SplitName {
  switch (s) {
    case Split.SPLIT_UNSPECIFIED:
      return DEFAULT_SPLIT;
    case Split.SPLIT_TRAIN:
      return 'train';
    case Split.SPLIT_TEST:
      return 'test';
    default:
      throw invalidArgument(`${field}: unknown split ${String(s)}`);
  }
}

export function splitToWire(s: SplitName): Split {
  return s === 'train' ? Split.SPLIT_TRAIN : Split.SPLIT_TEST;
}

/**
 * The wire enum names engines as ENGINE_<NAME>; the registry (services/engines) says which names exist.
 * A value the registry does not know is INVALID_ARGUMENT naming the known engines.
 */
export function engineFromWire(e: EngineEnum, fallback: EngineKind, field = 'engine'): EngineKind {
  if (e === EngineEnum.ENGINE_UNSPECIFIED) return fallback;
  const wire = EngineEnum[e] as string | undefined;
  const name = wire?.startsWith('ENGINE_') ? wire.slice('ENGINE_'.length).toLowerCase() : undefined;
  if (name === undefined || !engineRegistry.has(name)) {
    throw invalidArgument(`${field}: unknown engine ${name ?? String(e)} (known: ${engineRegistry.names().join(', ')})`);
  }
  return name;
}

export function engineToWire(e: EngineKind): EngineEnum {
  const value = (EngineEnum as unknown as Record<string, number | undefined>)[`ENGINE_${e.toUpperCase()}`];
  return value === undefined ? EngineEnum.UNRECOGNIZED : (value as EngineEnum);
}

/** Only the fields the request sets (unset ones come from the sidecar or the defaults). */
export function preprocessingFromWire(p: Preprocessing | undefined, field = 'preprocessing'): Partial<PreprocessSpec> | undefined {
  if (!p) return undefined;
  const out: Partial<PreprocessSpec> = {};
  if (p.scale !== undefined) {
    if (!Number.isFinite(p.scale) || p.scale === 0) throw invalidArgument(`${field}.scale must be finite and non-zero`);
    out.scale = p.scale;
  }
  if (p.mean.length > 0) out.mean = [...p.mean];
  if (p.std.length > 0) out.std = [...p.std];
  switch (p.channelOrder) {
    case ChannelOrder.CHANNEL_ORDER_UNSPECIFIED:
      break;
    case ChannelOrder.CHANNEL_ORDER_RGB:
      out.channelOrder = 'rgb';
      break;
    case ChannelOrder.CHANNEL_ORDER_BGR:
      out.channelOrder = 'bgr';
      break;
    default:
      throw invalidArgument(`${field}.channel_order: unknown value ${String(p.channelOrder)}`);
  }
  switch (p.fit) {
    case Fit.FIT_UNSPECIFIED:
      break;
    case Fit.FIT_RESIZE:
      out.fit = 'resize';
      break;
    case Fit.FIT_PAD:
      out.fit = 'pad';
      break;
    default:
      throw invalidArgument(`${field}.fit: unknown value ${String(p.fit)}`);
  }
  return out;
}

export function preprocessingToWire(p: PreprocessSpec): Preprocessing {
  return {
    scale: p.scale,
    mean: [...p.mean],
    std: [...p.std],
    channelOrder: p.channelOrder === 'bgr' ? ChannelOrder.CHANNEL_ORDER_BGR : ChannelOrder.CHANNEL_ORDER_RGB,
    fit: p.fit === 'pad' ? Fit.FIT_PAD : Fit.FIT_RESIZE,
  };
}

export function modelInfoToWire(d: ModelDescription, engines: EngineStatus[]): ModelInfo {
  return {
    name: d.name,
    format: modelFormatToWire(d.format),
    sha256: d.sha256,
    sizeBytes: d.sizeBytes,
    input: { name: d.input.name, shape: [...d.input.shape] },
    output: { name: d.output.name, shape: [...d.output.shape] },
    convLayers: d.convLayers.map((l) => ({
      index: l.index,
      name: l.name,
      channels: l.channels,
      outputShape: [...l.outputShape],
      batchNormFolded: l.batchNormFolded,
      activation: l.activation,
    })),
    denseLayers: d.denseLayers.map((l) => ({ index: l.index, name: l.name, units: l.units })),
    preprocessing: preprocessingToWire(d.preprocessing),
    classNames: [...d.classNames],
    parameters: d.parameters,
    ops: [...d.ops],
    engines: engines.map((s) => ({ engine: engineToWire(s.kind), device: s.device, backend: s.backend, note: s.note })),
  };
}

export function datasetInfoToWire(s: DatasetSummary): DatasetInfo {
  return {
    name: s.name,
    format: datasetFormatToWire(s.format),
    path: s.path,
    classNames: [...s.classNames],
    imageShape: [...s.imageShape],
    splits: s.splits.map((sp) => ({ split: splitToWire(sp.split), count: sp.count, perClass: [...sp.perClass] })),
  };
}
