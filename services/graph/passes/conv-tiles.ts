/**
 * Pass `conv-tiles`: a forward conv on a small map whose weights do not stay in cache, run as one image holding
 * the batch side by side (../conv-tiles.ts; emitted by ../ir-to-onnx.ts). Forward only.
 */
export { convAsTiles as convTilesApplies } from '../conv-tiles';

export const convTilesPass = {
  name: 'conv-tiles',
  summary: 'forward convs on small maps with large weights as one side-by-side image of the batch',
} as const;
