/** The zoo's record: `<dir>/zoo.json` and `<dir>/ZOO.md`, one row per model. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { epochsOf, minutesOf, readSidecar } from './sidecar';
import type { Verified } from './verify';

export interface ZooRow {
  name: string;
  source: 'trained' | 'shared';
  file: string;
  sha256: string;
  parameters: number;
  epochs: number;
  trainingMinutes?: number;
  /** As PyTorch measured it when training (the sidecar). */
  sidecarAccuracy: number;
  /** As the service measures it (Evaluate, onnxruntime). */
  serviceAccuracy: number;
  testImages: number;
  perClass: { name: string; accuracy: number }[];
  thesisAccuracy?: number;
  /** The two agree to within two images (near-ties PyTorch and onnxruntime may round apart) and the sidecar's 4 digits. */
  agrees: boolean;
  origin?: string;
  /** When the service measured it. */
  measured: string;
}

export function rowOf(v: Verified, measured: string): ZooRow {
  const { entry, source, dir } = v.placement;
  const file = path.join(dir, `${entry.name}.onnx`);
  const sidecar = readSidecar(path.join(dir, `${entry.name}.json`));
  if (!sidecar) throw new Error(`${entry.name}: no sidecar ${path.join(dir, entry.name + '.json')} to compare with`);
  const n = Number(v.result.count);
  return {
    name: entry.name,
    source,
    file,
    sha256: v.sha256,
    parameters: v.parameters,
    epochs: epochsOf(sidecar),
    trainingMinutes: minutesOf(sidecar),
    sidecarAccuracy: sidecar.test_accuracy,
    serviceAccuracy: v.result.accuracy,
    testImages: n,
    perClass: v.result.perClass.map((c) => ({ name: c.className, accuracy: c.accuracy })),
    thesisAccuracy: entry.thesisAccuracy,
    agrees: Math.abs(v.result.accuracy - sidecar.test_accuracy) <= 2 / n + 5e-5,
    origin: sidecar.origin,
    measured,
  };
}

const minutes = (m: number | undefined): string => (m === undefined ? '–' : `${m < 10 ? m.toFixed(1) : m.toFixed(0)} min`);
const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);

export function markdown(rows: ZooRow[], when: string): string {
  const lines = [
    '# Model zoo',
    '',
    `Written by \`npm run zoo\` on ${when}. Accuracy on the test split, measured twice: by PyTorch when`,
    'training (the sidecar) and by this service (Evaluate, onnxruntime) from the ONNX file.',
    '',
    '| model | source | epochs | training | PyTorch | service | test images | thesis | agree | sha256 | measured |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.source} | ${r.epochs} | ${minutes(r.trainingMinutes)} | ` +
      `${pct(r.sidecarAccuracy)} | ${pct(r.serviceAccuracy)} | ${r.testImages} | ${pct(r.thesisAccuracy)} | ${r.agrees ? 'yes' : '**no**'} | \`${r.sha256.slice(0, 12)}\` | ${r.measured.slice(0, 10)} |`),
    '',
    '## Per-class test accuracy (service)',
    '',
  ];
  for (const r of rows) {
    lines.push(`**${r.name}**: ${r.perClass.map((c) => `${c.name} ${pct(c.accuracy)}`).join(', ')}`, '');
  }
  lines.push('## How each was made', '');
  for (const r of rows) lines.push(`- **${r.name}** (${r.file}): ${r.origin ?? 'no origin recorded'}`);
  lines.push('');
  return lines.join('\n');
}

/**
 * Writes zoo.json and ZOO.md into `dir`, keeping the rows of models this run did not measure (each
 * row says when it was measured), in the zoo's order; returns their paths.
 */
export function writeRecord(dir: string, rows: ZooRow[], order: readonly string[]): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const json = path.join(dir, 'zoo.json');
  const md = path.join(dir, 'ZOO.md');
  const kept = fs.existsSync(json) ? (JSON.parse(fs.readFileSync(json, 'utf8')) as { models: ZooRow[] }).models : [];
  const byName = new Map([...kept, ...rows].map((r) => [r.name, r]));
  const all = order.flatMap((n) => byName.get(n) ?? []);
  const when = new Date().toISOString();
  fs.writeFileSync(json, JSON.stringify({ written: when, models: all }, null, 1) + '\n');
  fs.writeFileSync(md, markdown(all, when));
  return [json, md];
}
