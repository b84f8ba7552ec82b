/**
 * `npm run demo`: starts the server in this process on a free loopback port (model root: the
 * repository's models/, data root: a temporary folder), loads the bundled MNIST CNN (its sidecar is
 * found beside it), registers builtin:mnist, and through the generated client — over RPC, as any
 * other client — computes class averages (mean and top-k), the confidence matrix and similarity
 * methods 1 and 2; writes out/demo/ (class-average PNGs, summary.json, report.html) and stops.
 *
 * Environment: INTROSPECT_DEMO_OUT (output folder, default <repo>/out/demo), INTROSPECT_DEMO_CLASSES
 * (class indices, e.g. "0,1", default all), INTROSPECT_DEMO_K (top-k, default 100).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { IntrospectClient } from '../clients/client';
import { AverageKind } from '../api/generated/introspect/v1/analysis';
import { runReport } from '../clients/report/collect';
import { writeReport } from '../clients/report/write';
import { defaultConfig } from '../server/config';
import { createLogger } from '../server/log';
import { startServer } from '../server/server';

/** The repository root (this file runs as <root>/<dist>/scripts/demo.js). */
const ROOT = path.resolve(__dirname, '..', '..');

function envClasses(): number[] {
  const v = process.env.INTROSPECT_DEMO_CLASSES?.trim();
  if (!v) return [];
  return v.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`INTROSPECT_DEMO_CLASSES: '${s}' is not a class index`);
    return n;
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const out = path.resolve(process.env.INTROSPECT_DEMO_OUT ?? path.join(ROOT, 'out', 'demo'));
  const classes = envClasses();
  const k = Number(process.env.INTROSPECT_DEMO_K ?? 100);
  const dataRoot = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-demo-'));
  const log = createLogger({ level: 'warn' });
  const server = await startServer(
    { ...defaultConfig(), host: '127.0.0.1', port: 0, metricsPort: null, modelRoot: path.join(ROOT, 'models'), dataRoot, gracePeriodMs: 0, logLevel: 'warn' },
    { log },
  );
  const address = `127.0.0.1:${server.port}`;
  const client = new IntrospectClient(address);
  const say = (s: string): void => void process.stdout.write(`demo: ${s}\n`);
  try {
    say(`server listening on ${address}`);
    const model = await client.loadModel({ name: 'mnist_cnn', path: 'mnist_cnn.onnx' });
    say(`loaded ${model.name} (${model.parameters} parameters, conv layers ${model.convLayers.map((l) => l.channels).join('/')}, sha256 ${model.sha256.slice(0, 12)}…)`);
    const dataset = await client.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
    say(`registered ${dataset.name}: ${dataset.splits.map((s) => `${s.count} ${s.split === 1 ? 'train' : 'test'}`).join(', ')} images`);
    const run = await runReport(
      client,
      {
        model: model.name,
        dataset: dataset.name,
        average: { kind: AverageKind.AVERAGE_KIND_MEAN },
        extraAverages: [{ kind: AverageKind.AVERAGE_KIND_TOP_K, k }],
        classes,
        methods: [1, 2],
      },
      { onStageDone: (stage) => say(`${stage} done (${((Date.now() - started) / 1000).toFixed(1)} s)`) },
    );
    const written = await writeReport(out, run);
    const diag = run.confidence.diagonal;
    say(`confidence of the class averages (diagonal): ${diag.map((v) => v.toFixed(2)).join(' ')}`);
    for (const s of run.similarity) {
      say(`similarity method ${s.method}, mean over classes per conv layer: ${s.curves.meanOverClasses.map((v) => v.toFixed(3)).join(' ')}`);
    }
    say(`wrote ${written.files.length} files to ${out}`);
    say(`open ${written.report}`);
    say(`finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    client.close();
    await server.close(0);
    await fs.promises.rm(dataRoot, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
