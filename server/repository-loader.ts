/**
 * Loads the model repository (--repository) into the registries at start: every model, then every data
 * set. Readiness is blocked while it loads, and stays blocked with the reason when an entry fails (the
 * entries before it stay loaded; the server answers calls, but is not ready).
 */
import * as fs from 'node:fs';
import { IntrospectError } from '../services/errors';
import { parseRepository, type Repository } from '../services/repository/repository';
import type { App } from './app';
import type { Readiness } from './readiness';

export const REPOSITORY_BLOCKER = 'repository';

/** Reads, parses and loads the repository; resolves when done (readiness cleared) or failed (readiness says why). */
export async function loadRepository(app: App, file: string, readiness: Readiness): Promise<{ ok: boolean; reason?: string }> {
  readiness.block(REPOSITORY_BLOCKER, `loading the model repository ${file}`);
  const started = performance.now();
  try {
    let text: string;
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (e) {
      throw new IntrospectError('failed-precondition', `repository ${file}: cannot be read: ${(e as Error).message}`);
    }
    const repo = parseRepository(text, file);
    await loadEntries(app, repo, (done) =>
      readiness.block(REPOSITORY_BLOCKER, `loading the model repository ${file} (${done} of ${repo.models.length + repo.datasets.length} entries)`),
    );
    readiness.clear(REPOSITORY_BLOCKER);
    app.log.info('model repository loaded', {
      file,
      models: repo.models.map((m) => m.name),
      datasets: repo.datasets.map((d) => d.name),
      ms: Math.round(performance.now() - started),
    });
    return { ok: true };
  } catch (err) {
    const reason = `the model repository failed to load: ${err instanceof Error ? err.message : String(err)}`;
    readiness.block(REPOSITORY_BLOCKER, reason);
    app.log.error('not ready: the model repository failed to load', { file, reason });
    return { ok: false, reason };
  }
}

async function loadEntries(app: App, repo: Repository, progress: (done: number) => void): Promise<void> {
  let done = 0;
  const named = async (where: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await fn();
    } catch (e) {
      throw new IntrospectError(e instanceof IntrospectError ? e.kind : 'internal', `repository ${repo.file}: ${where}: ${e instanceof Error ? e.message : String(e)}`);
    }
    progress(++done);
  };
  for (const { where, ...request } of repo.models) await named(where, () => app.models.loadFromPath(request));
  for (const { where, ...args } of repo.datasets) await named(where, () => app.datasets.register(args));
}
