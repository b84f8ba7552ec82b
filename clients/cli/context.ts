/** What every CLI command gets: the client (connected lazily), output mode and I/O. */
import { IntrospectClient, type CallOpts, type ClientOptions } from '../client';
import { progressBar, type Progress } from './progress';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  readStdin: () => Promise<string>;
  stderrIsTty: boolean;
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

  progress(label: string): Progress {
    return progressBar(label, !this.json && this.io.stderrIsTty);
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
