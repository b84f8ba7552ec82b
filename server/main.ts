#!/usr/bin/env node
/**
 * The server process. SIGTERM / SIGINT: health NOT_SERVING, stop accepting calls, let running calls
 * finish within the grace period, cancel the rest, exit 0. A second signal exits at once.
 */
import { IntrospectError } from '../services/errors';
import { ConfigError, describeConfig, parseConfig, usage } from './config';
import { createLogger } from './log';
import { startServer } from './server';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`introspect-server: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(usage());
    return 0;
  }
  const config = parsed.config;
  const log = createLogger({ level: config.logLevel });
  process.on('uncaughtException', (err) => {
    log.error('uncaught exception', { error: err });
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection', { error: reason instanceof Error ? reason : String(reason) });
  });
  log.info('starting', { config: describeConfig(config) });
  const server = await startServer(config, { log });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: exiting now', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('shutting down', { signal, graceMs: config.gracePeriodMs });
      server.close(config.gracePeriodMs).then(
        () => resolve(0),
        (err: unknown) => {
          log.error('shutdown failed', { error: err instanceof Error ? err : String(err) });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    // A start-up error we raised ourselves (unreadable token or TLS file, port in use, ...) is one line;
    // anything else is a bug and keeps its stack.
    const text = err instanceof IntrospectError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`introspect-server: ${text}\n`);
    process.exit(1);
  },
);
