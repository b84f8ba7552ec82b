/** Starts the engines from the server configuration and waits until they are ready. */
import { createEngines, type Engines } from '../services/engines';
import type { ServerConfig } from './config';
import type { Logger } from './log';
import type { ServerMetrics } from './metrics';
import { resolveMemoryBudget } from './memory-budget';

export async function startEngines(config: ServerConfig, log: Logger, metrics?: ServerMetrics): Promise<Engines> {
  const engines = createEngines({
    workers: config.workers,
    intraOpThreads: config.intraOpThreads,
    device: config.device,
    onnxruntime: {
      // Tensors in flight are bounded by the same budget as one request.
      memoryBudgetBytes: resolveMemoryBudget(config).requestBytes,
      onQueueWait: metrics && ((seconds) => metrics.waitSeconds.observe({ resource: 'engine' }, seconds)),
    },
    log: (message) => log.info(message, { component: 'engines' }),
  });
  try {
    await engines.ready();
  } catch (err) {
    await engines.close().catch(() => {});
    throw err;
  }
  for (const s of engines.statuses()) {
    log.info('engine ready', { engine: s.kind, device: s.device, backend: s.backend, note: s.note || undefined });
  }
  return engines;
}
