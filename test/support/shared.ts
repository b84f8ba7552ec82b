/**
 * Large fixtures (CIFAR-10, Imagenette, the shared models) live in one folder found through
 * INTROSPECT_SHARED (default ../shared, relative to the repository root where tests run).
 * Tests that need it call `needShared(this, 'models/x.onnx')`: where it is absent they are
 * reported as pending with the reason, never passed silently.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const SHARED = path.resolve(process.env.INTROSPECT_SHARED ?? path.join(process.cwd(), '..', 'shared'));

export function sharedPath(...parts: string[]): string {
  return path.join(SHARED, ...parts);
}

/** Skips (pending, with the reason) the current test or suite when a shared fixture is missing. */
export function needShared(ctx: Mocha.Context, ...relative: string[]): void {
  for (const rel of relative) {
    const p = sharedPath(rel);
    if (!fs.existsSync(p)) {
      const reason = `fixture missing: ${p} (set INTROSPECT_SHARED to the shared folder)`;
      if (ctx.test) ctx.test.title += ` [pending: ${reason}]`;
      ctx.skip();
    }
  }
}
