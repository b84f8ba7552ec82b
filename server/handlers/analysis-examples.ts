/**
 * DatasetExamples: the K images of a split that activate each channel of a conv layer most. The
 * scan sends nothing; then one message per (channel, rank), highest activation first, with progress
 * counted over those messages.
 */
import type { DatasetExample, DatasetExamplesRequest } from '../../api/generated/introspect/v1/analysis';
import { invalidArgument } from '../../services/errors';
import { encodePng } from '../../services/images/png';
import { DEFAULT_EXAMPLES } from '../../services/jobs/defaults';
import { runExamples, type ExamplesJob } from '../../services/jobs/images';
import { splitFromWire } from '../convert';
import type { RpcContext } from '../rpc';
import type { AnalysisDeps } from './analysis';
import { channelsFromWire } from './analysis-selections';
import { datasetNamed, modelContext } from './common';

const MAX_EXAMPLES = 1000;

async function examplesJobFromWire(deps: AnalysisDeps, req: DatasetExamplesRequest): Promise<ExamplesJob> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const dataset = datasetNamed(deps.app, req.dataset);
  const split = splitFromWire(req.split);
  if (!dataset.summary.splits.some((s) => s.split === split)) throw invalidArgument(`split: dataset '${dataset.summary.name}' has no ${split} split`);
  const channels = channelsFromWire(req.layer, req.channels, mc.model.engineModel, 'layer', 'channels');
  const k = req.k || DEFAULT_EXAMPLES;
  if (k > MAX_EXAMPLES) throw invalidArgument(`k = ${k} is too large (at most ${MAX_EXAMPLES})`);
  return { mc, dataset, split, layer: req.layer, channels, k, limit: req.limit };
}

export async function* datasetExamplesStream(deps: AnalysisDeps, req: DatasetExamplesRequest, ctx: RpcContext): AsyncGenerator<DatasetExample> {
  for await (const e of runExamples(deps.jobs, await examplesJobFromWire(deps, req), ctx.signal)) {
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
