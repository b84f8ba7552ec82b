/** DatasetService: register, describe, list, unregister, and stream raw samples. */
import type {
  DatasetServiceServer,
  GetDatasetRequest,
  GetSamplesRequest,
  ListDatasetsRequest,
  ListDatasetsResponse,
  RegisterDatasetRequest,
  Sample,
  UnregisterDatasetRequest,
  UnregisterDatasetResponse,
} from '../../api/generated/introspect/v1/datasets';
import { invalidArgument, notFound } from '../../services/errors';
import { encodePng } from '../../services/images/png';
import type { App } from '../app';
import { datasetFormatFromWire, datasetInfoToWire, requireName, splitFromWire } from '../convert';
import { serverStream, unary, type RpcContext } from '../rpc';
import { uint8Tensor } from '../tensors';

/** Images read per batch for GetSamples (each is sent as its own message). */
const SAMPLE_BATCH = 64;

export function datasetHandlers(app: App): DatasetServiceServer {
  const deps = app.rpc;
  return {
    registerDataset: unary(deps, async (req: RegisterDatasetRequest, ctx) => {
      const summary = await app.datasets.register({
        name: requireName(req.name, 'name'),
        path: requireName(req.path, 'path'),
        format: datasetFormatFromWire(req.format),
        classNames: req.classNames.length > 0 ? req.classNames : undefined,
        trainPrefix: req.trainPrefix || undefined,
        testPrefix: req.testPrefix || undefined,
      });
      ctx.log.info('dataset registered', { dataset: summary.name, path: summary.path, format: summary.format });
      return datasetInfoToWire(summary);
    }),

    getDataset: unary(deps, async (req: GetDatasetRequest) =>
      datasetInfoToWire(app.datasets.get(requireName(req.name, 'name')).summary),
    ),

    listDatasets: unary(deps, async (_req: ListDatasetsRequest): Promise<ListDatasetsResponse> => ({
      datasets: app.datasets
        .list()
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(datasetInfoToWire),
    })),

    unregisterDataset: unary(deps, async (req: UnregisterDatasetRequest, ctx): Promise<UnregisterDatasetResponse> => {
      const name = requireName(req.name, 'name');
      if (!app.datasets.unregister(name)) throw notFound(`no dataset named '${name}'`);
      ctx.log.info('dataset unregistered', { dataset: name });
      return { unregistered: true };
    }),

    getSamples: serverStream(deps, (req: GetSamplesRequest, ctx) => samples(app, req, ctx)),
  };
}

async function* samples(app: App, req: GetSamplesRequest, ctx: RpcContext): AsyncGenerator<Sample> {
  const dataset = app.datasets.get(requireName(req.dataset, 'dataset'));
  const split = splitFromWire(req.split);
  const info = dataset.summary.splits.find((s) => s.split === split);
  if (!info) throw invalidArgument(`split: dataset '${dataset.summary.name}' has no ${split} split`);
  let indices: number[] | undefined;
  let offset = 0;
  let total: number;
  if (req.indices.length > 0) {
    req.indices.forEach((v, i) => {
      if (!Number.isInteger(v) || v < 0 || v >= info.count) {
        throw invalidArgument(`indices[${i}] = ${v} is outside the ${split} split (0..${info.count - 1})`);
      }
    });
    indices = [...req.indices];
    total = indices.length;
  } else {
    offset = req.offset;
    if (offset >= info.count) throw invalidArgument(`offset ${offset} is past the end of the ${split} split (${info.count} samples)`);
    total = req.limit > 0 ? Math.min(req.limit, info.count - offset) : info.count - offset;
  }
  let done = 0;
  const batches = dataset.batches(split, {
    batchSize: SAMPLE_BATCH,
    indices,
    offset: indices ? undefined : offset,
    limit: indices ? undefined : total,
    signal: ctx.signal,
  });
  for await (const batch of batches) {
    const size = batch.height * batch.width * batch.channels;
    for (let i = 0; i < batch.n; i++) {
      const pixels = batch.pixels.slice(i * size, (i + 1) * size);
      done++;
      yield {
        index: batch.indices[i]!,
        label: batch.labels[i]!,
        pixels: uint8Tensor(pixels, [batch.height, batch.width, batch.channels]),
        png: req.png ? encodePng(pixels, batch.height, batch.width, batch.channels) : Buffer.alloc(0),
        progress: { done, total },
      };
    }
  }
}
