/**
 * A data set's content identity, computed when it is registered, as a model is known by its sha256:
 * the registration arguments that change what is read (format, class names, IDX prefixes, the folder)
 * and, for every file the readers may open below the folder (the same depth they look into), its path,
 * size, modification time and inode. Replacing the files by others (same name, same folder) gives
 * another identity, so results cached for the old content are not served for the new.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DatasetFormatName } from './dataset';

export interface IdentityArgs {
  /** The folder as registered (relative to the data root, or builtin:…). */
  path: string;
  format: DatasetFormatName;
  classNames?: string[];
  trainPrefix?: string;
  testPrefix?: string;
}

/** [relative path, size, mtime in ns, inode] of every file below `dir`, `depth` levels deep, in name order. */
async function fileStamps(dir: string, depth: number, rel = ''): Promise<Array<[string, string, string, string]>> {
  const names = (await fs.promises.readdir(path.join(dir, rel))).sort();
  const perEntry = await Promise.all(
    names.map(async (name): Promise<Array<[string, string, string, string]>> => {
      const r = path.join(rel, name);
      let st: fs.BigIntStats;
      try {
        st = await fs.promises.stat(path.join(dir, r), { bigint: true }); // follows links: the content read
      } catch {
        return []; // a dangling link: no content
      }
      if (st.isDirectory()) return depth > 1 ? fileStamps(dir, depth - 1, r) : [];
      return st.isFile() ? [[r, st.size.toString(), st.mtimeNs.toString(), st.ino.toString()]] : [];
    }),
  );
  return perEntry.flat();
}

/** The identity (hex sha256) of the data set in folder `dir` registered with `args`. */
export async function datasetIdentity(dir: string, args: IdentityArgs, depth: number): Promise<string> {
  const files = await fileStamps(dir, depth);
  // Built in a fixed key order, so equal registrations give equal strings.
  const registration = { path: args.path, format: args.format, classNames: args.classNames, trainPrefix: args.trainPrefix, testPrefix: args.testPrefix };
  return createHash('sha256').update(JSON.stringify({ registration, files })).digest('hex');
}
