/**
 * The devices the onnxruntime engine can run on, and what each one means: which execution provider it asks
 * for, whether it is a GPU, and how it is named in model info and metrics. The one place that knows them.
 *
 * - cpu: onnxruntime's CPU provider.
 * - cuda: the CUDA provider (its libraries are fetched when onnxruntime-node installs with network access;
 *   the CUDA image in deploy/ has them).
 * - webgpu: the WebGPU provider built into onnxruntime-node for Linux x64 (Dawn on Vulkan): any Vulkan driver
 *   (NVIDIA's on GPU nodes, Mesa's software lavapipe on a CPU-only machine, for tests). Nothing is downloaded.
 */
export const ORT_DEVICES = ['cpu', 'cuda', 'webgpu'] as const;

export type OrtDevice = (typeof ORT_DEVICES)[number];

export function isOrtDevice(s: string): s is OrtDevice {
  return (ORT_DEVICES as readonly string[]).includes(s);
}

/** Whether the device is a GPU (one worker feeds it; a fallback to CPU is a degraded state). */
export function isGpu(d: OrtDevice): boolean {
  return d !== 'cpu';
}

/** The device's name in model info and metrics ('cpu', 'cuda:0', 'webgpu:0'). */
export function deviceLabel(d: OrtDevice): string {
  return d === 'cpu' ? 'cpu' : `${d}:0`;
}

/** The provider's name in messages ('CPU', 'CUDA', 'WebGPU'). */
export function providerName(d: OrtDevice): string {
  return { cpu: 'CPU', cuda: 'CUDA', webgpu: 'WebGPU' }[d];
}
