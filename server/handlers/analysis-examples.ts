/**
 * DatasetExamples: the K images of a split that activate each channel of a conv layer most. The
 * scan sends nothing; then one message per (channel, rank), highest activation first, with progress
 * counted over those messages.
 */
import type { DatasetExample, DatasetExamplesRequest } from '../../clients/generated/introspect/v1/analysis';
import { datasetExamples } from '../../services/analysis/examples';
import { invalidArgument } from '../../services/errors';
import { encodePng } from '../../services/images/png';
import { splitFromWire } from '../convert';
import type { RpcContext } from '../rpc';
import type { AnalysisDeps } from './analysis-averages';
import { channelsFromWire } from './analysis-requests';
import { datasetNamed, modelContext } from './common';

const DEFAULT_EXAMPLES = 9;
const MAX_EXAMPLES = 1000;

export async function* datasetExamplesStream(deps: AnalysisDeps, req: DatasetExamplesRequest, ctx: RpcContext): AsyncGenerator<DatasetExample> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const split = splitFromWire(req.split);
  if (!dataset.summary.splits.some((s) => s.split === split)) throw invalidArgument(`split: dataset '${dataset.summary.name}' has no ${split} split`);
  const model = mc.model.engineModel;
  const channels = channelsFromWire(req.layer, req.channels, model, 'layer', 'channels');
  const k = req.k || DEFAULT_EXAMPLES;
  if (k > MAX_EXAMPLES) throw invalidArgument(`k = ${k} is too large (at most ${MAX_EXAMPLES})`);
  for await (const e of datasetExamples({
    engine: mc.engine,
    model,
    preprocessing: mc.model.preprocessing,
    dataset,
    split,
    layer: req.layer,
    channels,
    k,
    limit: req.limit,
    signal: ctx.signal,
  })) {
    if (e.kind !== 'example') continue;
    yield {
      layer: e.layer,
      neuron: e.neuron,
      rank: e.rank,
      index: e.index,
      label: e.label,
      activation: e.activation,
      png: req.png ? encodePng(e.image.pixels, e.image.height, e.image.width, e.image.channels) : Buffer.alloc(0),
      progress: { done: e.done, total: e.total },
    };
  }
}
