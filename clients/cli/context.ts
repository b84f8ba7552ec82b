/** What every CLI command gets: the client (connected lazily), output mode and I/O. */
import { IntrospectClient, type CallOpts, type ClientOptions } from '../client';
import { NO_PROGRESS, progressBar, progressLines, type Progress } from './progress';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  stderrIsTty: boolean;
  /** Terminal width of stderr (for the progress bar). */
  stderrColumns?: number;
}

export class CliContext {
  private clientInstance: IntrospectClient | undefined;

  constructor(
    readonly server: string,
    readonly json: boolean,
    readonly timeoutMs: number | undefined,
    readonly io: CliIo,
    /** TLS credentials and bearer token (--tls-*, --token-file, $INTROSPECT_TOKEN). */
    readonly security: Pick<ClientOptions, 'credentials' | 'token'> = {},
    /** --quiet: no progress on stderr. */
    readonly quiet = false,
  ) {}

  get client(): IntrospectClient {
    this.clientInstance ??= new IntrospectClient(this.server, this.security);
    return this.clientInstance;
  }

  callOpts(): CallOpts {
    return this.timeoutMs !== undefined ? { timeoutMs: this.timeoutMs } : {};
  }

  /** One line on stdout. */
  print(line = ''): void {
    this.io.stdout(line + '\n');
  }

  /** One JSON value per line on stdout. */
  printJson(value: unknown): void {
    this.io.stdout(JSON.stringify(value) + '\n');
  }

  /**
   * Progress of a long stream on stderr: a bar on a terminal, plain rate-limited lines otherwise
   * (stdout stays clean for --json either way); nothing with --quiet.
   */
  progress(label: string): Progress {
    if (this.quiet) return NO_PROGRESS;
    if (this.io.stderrIsTty) return progressBar(label, { write: this.io.stderr, columns: this.io.stderrColumns });
    return progressLines(label, this.io.stderr);
  }

  close(): void {
    this.clientInstance?.close();
  }
}

export async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
