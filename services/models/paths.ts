/**
 * Confinement of user-given paths to a root folder. Both the path as written (`..`) and the real
 * path (symlinks resolved) must stay inside the root's real path; otherwise `permission-denied`
 * naming the path. A missing file is `not-found`, named relative to the root (never the absolute path).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { IntrospectError, invalidArgument, notFound } from '../errors';

const permissionDenied = (message: string): IntrospectError => new IntrospectError('permission-denied', message);

export interface ConfinedPath {
  /** As the user wrote it. */
  given: string;
  /** Real absolute path (symlinks resolved), inside the root. */
  real: string;
  /** Relative to the root, with forward slashes. */
  relative: string;
  isDirectory: boolean;
  size: number;
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export class PathConfinement {
  private rootReal: string | undefined;

  /** @param what e.g. 'model root', used in messages */
  constructor(
    readonly root: string,
    private readonly what: string,
  ) {}

  private async realRoot(): Promise<string> {
    if (this.rootReal === undefined) {
      try {
        this.rootReal = await fs.promises.realpath(this.root);
      } catch {
        throw new IntrospectError('failed-precondition', `the ${this.what} ${this.root} does not exist`);
      }
    }
    return this.rootReal;
  }

  /**
   * Resolves `given` (relative to the root) to a real path inside the root.
   * @param field the request field it came from, named in messages
   * @param shown how messages name the path (default: the field and the path as given)
   */
  async resolve(given: string, field: string, shown = `${field} '${given}'`): Promise<ConfinedPath> {
    if (given.trim() === '') throw invalidArgument(`${field} is empty: give a path relative to the ${this.what}`);
    if (given.includes('\0')) throw invalidArgument(`${shown} contains a NUL byte`);
    const root = await this.realRoot();
    const lexical = path.resolve(root, given);
    if (!inside(root, lexical)) {
      throw permissionDenied(`${shown} is outside the ${this.what}`);
    }
    let real: string;
    try {
      real = await fs.promises.realpath(lexical);
    } catch {
      throw notFound(`${shown} does not exist under the ${this.what}`);
    }
    if (!inside(root, real)) {
      throw permissionDenied(`${shown} leads outside the ${this.what} (through a symbolic link)`);
    }
    const stat = await fs.promises.stat(real);
    if (!stat.isFile() && !stat.isDirectory()) {
      throw invalidArgument(`${shown} is neither a file nor a folder`);
    }
    return {
      given,
      real,
      relative: path.relative(root, real).split(path.sep).join('/'),
      isDirectory: stat.isDirectory(),
      size: stat.size,
    };
  }

  /**
   * Resolves a path relative to the folder of an already confined file (e.g. weight shards).
   * @param shown how messages name it, e.g. "weight shard 'w.bin' of 'm/model.json'"
   */
  async resolveBeside(base: ConfinedPath, rel: string, shown: string): Promise<ConfinedPath> {
    const root = await this.realRoot();
    const dir = base.isDirectory ? base.real : path.dirname(base.real);
    return this.resolve(path.relative(root, path.resolve(dir, rel)) || '.', shown, shown);
  }
}
