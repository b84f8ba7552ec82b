/**
 * The model zoo: the thesis' reference models (SPEC.md §5), AlexNet and VGG11 adapted to 32×32, on
 * MNIST, Fashion-MNIST and CIFAR-10, and where each one's file comes from.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export type Arch = 'alexnet' | 'vgg11';
export type ZooDataset = 'mnist' | 'fashion-mnist' | 'cifar10';

export interface ZooEntry {
  /** `<arch>_<dataset>`: the file stem and the name the model is loaded under. */
  name: string;
  arch: Arch;
  dataset: ZooDataset;
  /** The thesis' reported test accuracy, where it reports one (SPEC.md §5). */
  thesisAccuracy?: number;
}

const THESIS: Record<string, number> = {
  alexnet_mnist: 0.991,
  vgg11_mnist: 0.991,
  alexnet_cifar10: 0.679,
  vgg11_cifar10: 0.739,
};

export const ZOO: readonly ZooEntry[] = (['alexnet', 'vgg11'] as const).flatMap((arch) =>
  (['mnist', 'fashion-mnist', 'cifar10'] as const).map((dataset) => {
    const name = `${arch}_${dataset}`;
    return { name, arch, dataset, thesisAccuracy: THESIS[name] };
  }),
);

/** The entries named in a comma-separated list (all when empty); throws naming an unknown one. */
export function selectEntries(only: string[]): ZooEntry[] {
  if (only.length === 0) return [...ZOO];
  return only.map((n) => {
    const e = ZOO.find((z) => z.name === n);
    if (!e) throw new Error(`--only: unknown zoo model '${n}' (known: ${ZOO.map((z) => z.name).join(', ')})`);
    return e;
  });
}

/** Where an entry's ONNX file is: trained into the zoo folder, else provided by the shared folder. */
export interface Placement {
  entry: ZooEntry;
  source: 'trained' | 'shared';
  /** The folder that holds `<name>.onnx` and its sidecar `<name>.json`. */
  dir: string;
}

/**
 * A model already in `<shared>/models` is used from there unless it has been trained into the zoo
 * folder too; every other one is trained into the zoo folder.
 */
export function place(entry: ZooEntry, zooDir: string, sharedModels: string | undefined): Placement {
  const own = fs.existsSync(path.join(zooDir, `${entry.name}.onnx`));
  if (!own && sharedModels && fs.existsSync(path.join(sharedModels, `${entry.name}.onnx`))) {
    return { entry, source: 'shared', dir: sharedModels };
  }
  return { entry, source: 'trained', dir: zooDir };
}
