/**
 * What onnxruntime's WebGPU provider (1.30) computes wrongly, checked before a graph is sent to it, so that a
 * wrong answer becomes a clear refusal. Measured on Dawn over Mesa's lavapipe against the CPU provider:
 * - ConvTranspose with group > 1 and more than one input channel per group: values off by up to 7 on inputs of
 *   order 1 (depthwise, one channel per group, is exact). The plain attribution graph's backward of a grouped
 *   conv is such a ConvTranspose (input channels per group = the conv's output channels per group).
 */
import { unimplemented } from '../../errors';
import type { EngineModel } from '../engine';

/** Throws UNIMPLEMENTED naming the conv when the model's attribution graph would hit a known WebGPU fault. */
export function checkWebgpuAttribution(model: EngineModel): void {
  for (const n of model.graph.nodes) {
    const op = n.op;
    if (op.op !== 'conv' || op.group === 1) continue;
    const cout = model.graph.weights.get(op.weight)?.shape[0] ?? 0;
    if (cout / op.group > 1) {
      throw unimplemented(
        `conv '${n.name}' is grouped (group ${op.group}, ${cout / op.group} output channels per group): its backward is a grouped ConvTranspose, ` +
          `which onnxruntime's WebGPU provider computes wrongly; compute this model's attributions on a server with --device cpu or cuda`,
      );
    }
  }
}
