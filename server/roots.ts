/** The model and data roots must exist as folders for the server to be ready; what is missing, in words. */
import * as fs from 'node:fs';
import type { ServerConfig } from './config';

export async function missingRoots(config: Pick<ServerConfig, 'modelRoot' | 'dataRoot'>): Promise<string[]> {
  const out: string[] = [];
  for (const [root, flag, what] of [
    [config.modelRoot, '--model-root', 'model root'],
    [config.dataRoot, '--data-root', 'data root'],
  ] as const) {
    const st = await fs.promises.stat(root).catch(() => undefined);
    if (!st) out.push(`the ${what} ${root} does not exist (${flag})`);
    else if (!st.isDirectory()) out.push(`the ${what} ${root} is not a folder (${flag})`);
  }
  return out;
}
