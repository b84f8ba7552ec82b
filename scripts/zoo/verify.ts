/**
 * Measures each zoo model again through the service, as any client would: a server on loopback
 * with the model's folder as its model root, LoadModel (the sidecar beside the file gives the
 * preprocessing and class names), Evaluate on the test split with onnxruntime.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IntrospectClient } from '../../clients/client';
import type { EvaluationResult } from '../../api/generated/introspect/v1/models';
import { Split } from '../../api/generated/introspect/v1/common';
import { defaultConfig } from '../../server/config';
import { createLogger } from '../../server/log';
import { startServer } from '../../server/server';
import type { Placement, ZooDataset } from './catalogue';

export interface Verified {
  placement: Placement;
  sha256: string;
  parameters: number;
  result: EvaluationResult;
}

/** How the service registers each data set: builtin ones, or CIFAR-10's folder under the data root. */
function datasetPath(d: ZooDataset, cifarDir: string): string {
  if (d === 'mnist') return 'builtin:mnist';
  if (d === 'fashion-mnist') return 'builtin:fashion-mnist';
  return path.basename(cifarDir);
}

/**
 * Evaluates every placement on its whole test split (a trained one on the first `testLimit` images when
 * set, as it was trained with), one server per
 * model folder. Throws naming the model when the service cannot load or evaluate it.
 */
export async function verifyAll(
  placements: Placement[],
  o: { cifarDir: string; testLimit?: number; say: (s: string) => void },
): Promise<Verified[]> {
  const out: Verified[] = [];
  const dirs = [...new Set(placements.map((p) => p.dir))];
  // Built-in data sets need no data root; CIFAR-10 is read from the folder train.py read it from.
  const tempRoot = fs.existsSync(path.dirname(o.cifarDir)) ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'zoo-data-'));
  const dataRoot = tempRoot ?? path.dirname(o.cifarDir);
  try {
    for (const dir of dirs) await verifyFolder(dir, placements.filter((q) => q.dir === dir), dataRoot, o, out);
  } finally {
    if (tempRoot) fs.rmSync(tempRoot, { recursive: true, force: true });
  }
  return out;
}

async function verifyFolder(
  dir: string,
  placements: Placement[],
  dataRoot: string,
  o: { cifarDir: string; testLimit?: number; say: (s: string) => void },
  out: Verified[],
): Promise<void> {
  const log = createLogger({ level: 'warn' });
  const server = await startServer(
    { ...defaultConfig(), host: '127.0.0.1', port: 0, metricsPort: null, modelRoot: dir, dataRoot, gracePeriodMs: 0, logLevel: 'warn' },
    { log },
  );
  const client = new IntrospectClient(`127.0.0.1:${server.port}`);
  try {
    const registered = new Set<ZooDataset>();
    for (const p of placements) {
      const { name, dataset } = p.entry;
      if (!registered.has(dataset)) {
        await client.registerDataset({ name: dataset, path: datasetPath(dataset, o.cifarDir) });
        registered.add(dataset);
      }
      const info = await client.loadModel({ name, path: `${name}.onnx` }).catch((e: Error) => {
        throw new Error(`${name}: the service cannot load ${path.join(dir, name + '.onnx')}: ${e.message}`);
      });
      let result: EvaluationResult | undefined;
      for await (const m of client.evaluate({ model: name, dataset, split: Split.SPLIT_TEST, limit: p.source === 'trained' ? o.testLimit ?? 0 : 0 })) {
        if (m.result) result = m.result;
      }
      if (!result) throw new Error(`${name}: Evaluate ended without a result`);
      o.say(`${name}: the service measures ${result.accuracy.toFixed(4)} on ${result.count} test images (${result.imagesPerSecond.toFixed(0)} images/s)`);
      out.push({ placement: p, sha256: info.sha256, parameters: Number(info.parameters), result });
      await client.unloadModel(name);
    }
  } finally {
    client.close();
    await server.close(0);
  }
}
