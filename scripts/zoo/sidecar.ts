/** The parts of a training sidecar (scripts/train/train.py) the zoo reads. */
import * as fs from 'node:fs';

export interface EpochLog {
  epoch: number;
  test_acc: number;
  per_class_acc: (number | null)[];
  minutes?: number;
}

export interface TrainingSidecar {
  test_accuracy: number;
  per_class_test_accuracy: (number | null)[];
  training_log: EpochLog[] | string;
  origin?: string;
  parameters?: number;
  output?: { classes?: string[] };
}

/** The sidecar at `file`, or undefined when there is none; throws naming the file when it is malformed. */
export function readSidecar(file: string): TrainingSidecar | undefined {
  if (!fs.existsSync(file)) return undefined;
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<TrainingSidecar>;
  if (typeof s.test_accuracy !== 'number' || !Array.isArray(s.per_class_test_accuracy)) {
    throw new Error(`${file}: not a training sidecar (no test_accuracy / per_class_test_accuracy)`);
  }
  return s as TrainingSidecar;
}

/** Epochs the sidecar's model was trained for (its log's length; a log stored as text counts its entries). */
export function epochsOf(s: TrainingSidecar): number {
  if (Array.isArray(s.training_log)) return s.training_log.length;
  return (s.training_log.match(/'epoch':/g) ?? []).length;
}

/** Minutes the training took, summed over the epochs the log times. */
export function minutesOf(s: TrainingSidecar): number | undefined {
  if (!Array.isArray(s.training_log) || s.training_log.some((e) => typeof e.minutes !== 'number')) return undefined;
  return s.training_log.reduce((a, e) => a + (e.minutes ?? 0), 0);
}
