/** NeuronImages: attribution images of conv channels and class logits, one message per image. */
import type { NeuronImage, NeuronImagesRequest } from '../../api/generated/introspect/v1/analysis';
import { neuronImages } from '../../services/analysis/neuron-images';
import { attributionToPng } from '../../services/images/png';
import type { RpcContext } from '../rpc';
import { float32Tensor } from '../tensors';
import type { AnalysisDeps } from './analysis-averages';
import { neuronInput } from './analysis-input';
import { attributionFromWire, classesFromWire, layerSelectionsFromWire } from './analysis-requests';
import { modelContext } from './common';

export async function* neuronImagesStream(deps: AnalysisDeps, req: NeuronImagesRequest, ctx: RpcContext): AsyncGenerator<NeuronImage> {
  const mc = await modelContext(deps.app, req.model, req.engine);
  const model = mc.model.engineModel;
  // Everything about the request is checked before any work starts.
  const layers = layerSelectionsFromWire(req.layers, model);
  // Class-logit images only for the classes named (none by default).
  const classes = req.classes.length > 0 ? classesFromWire(req.classes, model.classes, `model '${mc.model.name}'`) : [];
  const attribution = attributionFromWire(req.attribution, model);
  const input = await neuronInput(deps, mc, req.input, ctx.signal);
  const shape = mc.model.inputShape;
  for await (const n of neuronImages({ ...attribution, engine: mc.engine, model, input, layers, classes, signal: ctx.signal })) {
    deps.app.metrics.imagesComputed.inc({ kind: 'neuron_image' });
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
