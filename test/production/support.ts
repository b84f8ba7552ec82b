/**
 * Helpers for the production tests: a server with a log captured in memory, throwaway certificates
 * made with openssl, a raw client with identity serialisers, and process memory figures.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { createLogger } from '../../server/log';
import { startTestServer, type TestServer, type TestServerOptions } from '../support/server';
import { seededRandom } from '../../services/random';

export interface LoggedServer {
  ts: TestServer;
  /** Every log line the server wrote (JSON text). */
  lines: string[];
}

/** startTestServer with the server log kept in `lines` (level info), for "never logged" checks. */
export async function startLoggedServer(opts: TestServerOptions): Promise<LoggedServer> {
  const lines: string[] = [];
  const ts = await startTestServer({ ...opts, log: createLogger({ level: 'debug', write: (l) => lines.push(l) }) });
  return { ts, lines };
}

export function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface Pki {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA (must be refused under mutual TLS). */
  strangerCert: string;
  strangerKey: string;
  strangerCa: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ca(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

function leaf(dir: string, name: string, caName: string, ext: string): void {
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), ext);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

/** A throwaway CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger's. */
export function makePki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true });
  ca(dir, 'ca');
  ca(dir, 'otherca');
  leaf(dir, 'server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf(dir, 'client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf(dir, 'stranger', 'otherca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string): string => path.join(dir, f);
  return {
    dir,
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    strangerCert: p('stranger.crt'),
    strangerKey: p('stranger.key'),
    strangerCa: p('otherca.crt'),
  };
}

const identity = (b: Buffer): Buffer => b;

export interface RawOutcome {
  code: number;
  details: string;
  messages: number;
}

/** Sends raw bytes as the request message(s) of `methodPath`; resolves with the final status. */
export function rawCall(
  client: Client,
  methodPath: string,
  kind: { requestStream: boolean; responseStream: boolean },
  payloads: Buffer[],
  timeoutMs: number,
): Promise<RawOutcome> {
  const deadline = Date.now() + timeoutMs;
  const md = new Metadata();
  return new Promise((resolve) => {
    let messages = 0;
    const done = (err: ServiceError | null): void => resolve({ code: err?.code ?? 0, details: err?.details ?? '', messages });
    if (kind.responseStream) {
      const call = client.makeServerStreamRequest(methodPath, identity, identity, payloads[0] ?? Buffer.alloc(0), md, { deadline });
      call.on('data', () => messages++);
      call.on('error', (e: ServiceError) => done(e));
      call.on('end', () => setImmediate(() => done(null)));
      // 'status' always comes; 'end' after an error is ignored since resolve runs once.
      return;
    }
    if (kind.requestStream) {
      const call = client.makeClientStreamRequest(methodPath, identity, identity, md, { deadline }, (err) => {
        if (!err) messages++;
        done(err);
      });
      call.on('error', () => {});
      for (const p of payloads) call.write(p);
      call.end();
      return;
    }
    client.makeUnaryRequest(methodPath, identity, identity, payloads[0] ?? Buffer.alloc(0), md, { deadline }, (err) => {
      if (!err) messages++;
      done(err);
    });
  });
}

export function rawClient(address: string): Client {
  return new Client(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
}

/** A seeded PRNG (mulberry32), so a failing fuzz case can be replayed. */
export const rng = seededRandom;

export function randomBytes(next: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
  return b;
}

export const MiB = 1024 * 1024;
