/** Checks shared by the readers: labels in range, no class without samples. */
import { invalidArgument } from '../errors';
import type { DatasetSummary } from './dataset';

export interface LabelSource {
  labels: Uint8Array | Int32Array;
  /** Shown in messages: the file (or folder) the labels came from. */
  file: string;
}

/** Every label of every source is below the number of classes; else names the file and sample. */
export function checkLabelRange(classes: number, sources: LabelSource[]): void {
  for (const { labels, file } of sources) {
    for (let i = 0; i < labels.length; i++) {
      const label = labels[i];
      if (label >= classes || label < 0) {
        throw invalidArgument(`${file}: sample ${i} has label ${label}, out of range for ${classes} classes`);
      }
    }
  }
}

/** Labels in range, and every class has at least one sample over all the sources. */
export function checkClasses(summary: Pick<DatasetSummary, 'classNames' | 'path'>, sources: LabelSource[]): void {
  const classes = summary.classNames.length;
  if (classes === 0) throw invalidArgument(`${summary.path}: no classes`);
  checkLabelRange(classes, sources);
  const seen = new Array<number>(classes).fill(0);
  for (const { labels } of sources) for (let i = 0; i < labels.length; i++) seen[labels[i]]++;
  const empty = seen.findIndex((n) => n === 0);
  if (empty >= 0) {
    throw invalidArgument(`${summary.path}: class ${empty} ('${summary.classNames[empty]}') has no images`);
  }
}
