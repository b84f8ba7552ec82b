/**
 * Whether the server may serve on the device its engines ended up on. A GPU pod that silently runs on the
 * CPU is the failure operators fear most: when onnxruntime was asked for a GPU device and fell back to the
 * CPU, the server stays NOT_SERVING with the reason, unless the operator allowed the fallback.
 */
import type { EngineStatus } from '../services/engines/engine';
import { engineRegistry } from '../services/engines';
import { isGpu } from '../services/engines/onnxruntime/devices';
import type { ServerConfig } from './config';

export interface DeviceReadiness {
  /** Whether health may report SERVING. */
  ok: boolean;
  /** Engines that fell back from the requested device ('' where none did). */
  fellBack: EngineStatus[];
  /** Why the server is not serving ('' when ok). */
  reason: string;
}

export function deviceReadiness(config: Pick<ServerConfig, 'device' | 'allowCpuFallback'>, statuses: EngineStatus[]): DeviceReadiness {
  const fellBack = isGpu(config.device) ? statuses.filter((s) => takesDevice(s.kind, config.device) && s.backend !== config.device) : [];
  if (fellBack.length === 0 || config.allowCpuFallback) return { ok: true, fellBack, reason: '' };
  const why = fellBack.map((s) => s.note || `${s.kind} runs on ${s.device}`).join('; ');
  return {
    ok: false,
    fellBack,
    reason: `device ${config.device} was requested but is unavailable (${why}); start with --allow-cpu-fallback to serve on the CPU anyway`,
  };
}

/** Whether engine `kind` is one that can be asked for `device` (the others choose their own). */
function takesDevice(kind: string, device: string): boolean {
  return engineRegistry.has(kind) && engineRegistry.get(kind).devices.includes(device);
}
