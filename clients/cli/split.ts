/**
 * The one split default of the CLI: every command that reads data set images takes them from the
 * test split unless --split says otherwise.
 *
 * Why test: it is what the API means by an unspecified split (SPLIT_UNSPECIFIED = test, resolved in
 * one place on the server), the measurements (evaluate, prune, probes' comparison, examples) belong on
 * held-out images, and a class average then describes the same images the accuracies are measured on.
 * Class averages over the training images (as the thesis draws them) are one `--split train` away.
 */
import { Split } from '../../api/generated/introspect/v1/common';
import { UsageError, type FlagSpec } from './args';

export const DEFAULT_SPLIT = 'test' as const;

export const SPLIT_FLAG: Record<string, FlagSpec> = {
  split: { type: 'string', arg: 'train|test', help: `which split the images come from (default ${DEFAULT_SPLIT}, for every command)` },
};

/** --split as the API's enum; absent → DEFAULT_SPLIT, sent explicitly. */
export function splitFlag(v: string | undefined): Split {
  const name = v ?? DEFAULT_SPLIT;
  if (name === 'train') return Split.SPLIT_TRAIN;
  if (name === 'test') return Split.SPLIT_TEST;
  throw new UsageError(`--split must be train or test, not '${name}'`);
}
