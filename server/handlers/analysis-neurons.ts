/** NeuronImages: attribution images of conv channels and class logits, one message per image. */
import type { NeuronImage, NeuronImagesRequest } from '../../api/generated/introspect/v1/analysis';
import { attributionToPng } from '../../services/images/png';
import { runNeuronImages, type NeuronImagesJob } from '../../services/jobs/images';
import type { RpcContext } from '../rpc';
import { float32Tensor } from '../tensors';
import type { AnalysisDeps } from './analysis';
import { neuronInputFromWire } from './analysis-input';
import { attributionFromWire } from './analysis-requests';
import { classesFromWire, layerSelectionsFromWire } from './analysis-selections';
import { modelContext } from './common';

async function neuronsJobFromWire(deps: AnalysisDeps, req: NeuronImagesRequest): Promise<NeuronImagesJob> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const model = mc.model.engineModel;
  // Everything about the request is checked before any work starts.
  const layers = layerSelectionsFromWire(req.layers, model);
  // Class-logit images only for the classes named (none by default).
  const classes = req.classes.length > 0 ? classesFromWire(req.classes, model.classes, `model '${mc.model.name}'`) : [];
  const attribution = attributionFromWire(req.attribution, model);
  const input = neuronInputFromWire(deps, mc, req.input);
  return { ...attribution, mc, input, layers, classes };
}

export async function* neuronImagesStream(deps: AnalysisDeps, req: NeuronImagesRequest, ctx: RpcContext): AsyncGenerator<NeuronImage> {
  const job = await neuronsJobFromWire(deps, req);
  const shape = job.mc.model.inputShape;
  for await (const n of runNeuronImages(deps.jobs, job, ctx.signal)) {
    yield {
      layer: n.layer,
      neuron: n.neuron,
      image: {
        // `n.image` is a view into the engine's chunk: copy what goes on the wire.
        tensor: req.omitTensor ? undefined : float32Tensor(n.image.slice(), [...shape]),
        png: req.png ? attributionToPng(n.image, shape) : Buffer.alloc(0),
      },
      allZero: n.allZero,
      progress: { done: n.done, total: n.total },
    };
  }
}
