/**
 * Child process of the tfjs device tests: starts a tfjs engine asked for device `webgpu` in this process's
 * environment (a test hides the Vulkan drivers from it) and prints its status and the server's device
 * readiness verdict as one JSON line.
 */
import { TfjsEngine } from '../../services/engines/tfjs/engine';
import { deviceReadiness } from '../../server/device-readiness';

async function main(): Promise<void> {
  const engine = new TfjsEngine({ device: 'webgpu', log: () => undefined });
  const status = await engine.ready();
  const readiness = deviceReadiness({ device: 'webgpu', allowCpuFallback: false }, [status]);
  process.stdout.write(`${JSON.stringify({ status, readiness })}\n`);
  await engine.close();
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
