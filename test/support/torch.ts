/**
 * The training script runs under Debian's /usr/bin/python3 with python3-torch (installed by
 * `scripts/setup.sh --with-training`). Tests that need it call `needTorch(this)`: where it is missing
 * they are reported as pending with the reason.
 */
import { spawnSync } from 'node:child_process';

export const PYTHON = '/usr/bin/python3';

let available: boolean | undefined;

export function needTorch(ctx: Mocha.Context): void {
  available ??= spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  if (!available) {
    const reason = `${PYTHON} with torch is not installed (bash scripts/setup.sh --with-training)`;
    if (ctx.test) ctx.test.title += ` [pending: ${reason}]`;
    ctx.skip();
  }
}
