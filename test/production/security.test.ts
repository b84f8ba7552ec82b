/**
 * Bearer-token authentication and TLS / mutual TLS over a real loopback server: the statuses for a
 * missing or wrong token, health and reflection open to all, the token never in the log; TLS with the
 * server certificate verified by a throwaway CA (made with openssl), plaintext refused, mutual TLS
 * refusing clients without a certificate or with one from another CA; and the options' parsing.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Metadata, credentials, status } from '@grpc/grpc-js';
import { runCli } from '../../clients/cli/main';
import type { CliIo } from '../../clients/cli/context';
import { IntrospectClient, clientSecurity, type ClientOptions } from '../../clients/client';
import { isPublicMethod, parseTokens, TokenSet } from '../../server/auth';
import { parseConfig } from '../../server/config';
import { BUNDLED_MODEL, grpcError, startTestServer, type TestServer } from '../support/server';
import { counter } from '../rpc/support';
import { haveOpenssl, makePki, startLoggedServer, type Pki } from './support';

const TOKEN_A = 'tok-alpha-7f3a9c1e55d2';
const TOKEN_B = 'tok-bravo-0b6e44aa91c8';

const SERVING = 1;

/** grpc.health.v1 Check for the whole server, with hand-written protobuf (status is field 1). */
function healthOf(address: string, creds = credentials.createInsecure(), options: Record<string, string> = {}): Promise<number> {
  const c = new Client(address, creds, options);
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) =>
    c.makeUnaryRequest('/grpc.health.v1.Health/Check', id, id, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (err, res) => {
      c.close();
      if (err || !res) return reject(err ?? new Error('no health answer'));
      resolve(res.length >= 2 && res[0] === 0x08 ? res[1]! : 0);
    }),
  );
}

describe('production: configuration of auth, TLS and limits', () => {
  it('parses the new flags and environment variables (flags win), and rejects bad values', () => {
    const env = { INTROSPECT_AUTH_TOKEN_FILE: '/etc/t', INTROSPECT_MAX_HEAVY_STREAMS: '3', INTROSPECT_MAX_RECEIVE_BYTES: '1MiB' };
    const p = parseConfig(['--tls-cert', 'a.pem', '--tls-key=b.pem', '--tls-client-ca', 'ca.pem', '--max-heavy-streams', '5'], env);
    assert.ok(!p.help);
    assert.equal(p.config.authTokenFile, '/etc/t');
    assert.equal(p.config.tlsCert, path.resolve('a.pem'));
    assert.equal(p.config.tlsKey, path.resolve('b.pem'));
    assert.equal(p.config.tlsClientCa, path.resolve('ca.pem'));
    assert.equal(p.config.maxHeavyStreams, 5);
    assert.equal(p.config.maxReceiveBytes, 1024 * 1024);
    const d = parseConfig([], {});
    assert.ok(!d.help);
    assert.equal(d.config.authTokenFile, undefined);
    assert.equal(d.config.maxHeavyStreams, undefined);
    assert.equal(d.config.maxReceiveBytes, 16 * 1024 * 1024);
    assert.throws(() => parseConfig(['--max-heavy-streams', '0'], {}), /--max-heavy-streams: 0 is outside 1\.\./);
    assert.throws(() => parseConfig(['--max-receive-bytes', 'lots'], {}), /not a size/);
    assert.throws(() => parseConfig(['--auth-token-file', ' '], {}), /must not be empty/);
  });

  it('token files: one per line, blanks and comments skipped; constant-time set membership', () => {
    assert.deepEqual(parseTokens(`# tokens\n${TOKEN_A}\r\n\n  ${TOKEN_B}  \n`), [TOKEN_A, TOKEN_B]);
    const set = new TokenSet([TOKEN_A, TOKEN_B]);
    assert.ok(set.has(TOKEN_A) && set.has(TOKEN_B));
    assert.ok(!set.has(TOKEN_A.slice(0, -1)) && !set.has(TOKEN_A + 'x') && !set.has(''));
    assert.ok(isPublicMethod('/grpc.health.v1.Health/Check'));
    assert.ok(isPublicMethod('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo'));
    assert.ok(!isPublicMethod('/introspect.v1.ModelService/ListModels'));
  });
});

describe('production: bearer-token authentication', function () {
  this.timeout(60_000);
  let ts: TestServer;
  let lines: string[];
  let tokenFile: string;

  before(async () => {
    const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'introspect-auth-'));
    tokenFile = path.join(dir, 'tokens');
    await fs.promises.writeFile(tokenFile, `# two clients\n${TOKEN_A}\n${TOKEN_B}\n`);
    ({ ts, lines } = await startLoggedServer({ models: [BUNDLED_MODEL], config: { authTokenFile: tokenFile } }));
  });
  after(async () => {
    await ts?.close();
    if (tokenFile) await fs.promises.rm(path.dirname(tokenFile), { recursive: true, force: true });
  });

  it('refuses a call without a token (UNAUTHENTICATED) and with a wrong one (PERMISSION_DENIED)', async () => {
    const none = await grpcError(() => ts.client.listModels());
    assert.equal(none.code, status.UNAUTHENTICATED);
    assert.match(none.details, /authorization: Bearer <token>/);
    const md = new Metadata();
    md.set('authorization', 'Basic abc');
    const malformed = await grpcError(() => ts.client.listModels({ metadata: md }));
    assert.equal(malformed.code, status.UNAUTHENTICATED);
    const wrong = new IntrospectClient(ts.address, { token: TOKEN_A + 'x' });
    try {
      const denied = await grpcError(() => wrong.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' }));
      assert.equal(denied.code, status.PERMISSION_DENIED);
      assert.match(denied.details, /bearer token is not accepted/);
      // Streams are refused before their handler runs.
      const stream = await grpcError(async () => {
        for await (const _ of wrong.evaluate({ model: 'cnn', dataset: 'x' })) void _;
      });
      assert.equal(stream.code, status.PERMISSION_DENIED);
    } finally {
      wrong.close();
    }
    assert.equal(ts.server.app.models.list().length, 0, 'a refused LoadModel did not load anything');
  });

  it('accepts each configured token, streams included', async () => {
    for (const token of [TOKEN_A, TOKEN_B]) {
      const c = new IntrospectClient(ts.address, { token });
      try {
        assert.deepEqual(await c.listModels(), []);
      } finally {
        c.close();
      }
    }
    const c = new IntrospectClient(ts.address, { token: TOKEN_B });
    try {
      await c.loadModel({ name: 'cnn', path: 'mnist_cnn.onnx' });
      await c.registerDataset({ name: 'mnist', path: 'builtin:mnist' });
      const msgs: number[] = [];
      for await (const m of c.evaluate({ model: 'cnn', dataset: 'mnist', limit: 64 })) msgs.push(Number(m.result?.count ?? -1));
      assert.equal(msgs.at(-1), 64);
    } finally {
      c.close();
    }
  });

  it('leaves health and reflection open, and never writes a token to the log', async () => {
    assert.equal(await healthOf(ts.address), SERVING);
    const list = await reflectionServices(ts.address);
    assert.ok(list.includes('introspect.v1.ModelService'), `reflection lists ${list.join(', ')}`);
    const log = lines.join('\n');
    assert.match(log, /call refused/, 'refusals are logged');
    const text = await (await fetch(ts.metricsUrl)).text();
    const handled = (code: string): number =>
      counter(text, 'grpc_server_handled_total', { grpc_type: 'unary', grpc_service: 'introspect.v1.ModelService', grpc_method: 'ListModels', grpc_code: code });
    assert.equal(handled('UNAUTHENTICATED'), 2, 'refusals are counted on /metrics');
    for (const t of [TOKEN_A, TOKEN_B, TOKEN_A + 'x']) assert.ok(!log.includes(t), 'a token appears in the server log');
  });

  it('the client reads its token from a file or INTROSPECT_TOKEN', () => {
    assert.equal(clientSecurity({ tokenFile }).token, TOKEN_A, 'the first token line, comments skipped');
    assert.equal(clientSecurity({ tokenFile, token: TOKEN_B }).token, TOKEN_A, 'the file wins over the variable');
    assert.equal(clientSecurity({ token: TOKEN_B }).token, TOKEN_B);
    assert.equal(clientSecurity({}).token, undefined);
  });

  it('refuses to start with an unreadable or empty token file', async () => {
    const empty = path.join(path.dirname(tokenFile), 'empty');
    await fs.promises.writeFile(empty, '\n# none\n');
    await assert.rejects(startTestServer({ config: { authTokenFile: empty } }), /holds no token/);
    await assert.rejects(startTestServer({ config: { authTokenFile: empty + '.missing' } }), /auth token file .*ENOENT/);
  });
});

/** Service names from the reflection service (v1alpha), called without any token. */
async function reflectionServices(address: string): Promise<string[]> {
  const c = new Client(address, credentials.createInsecure());
  // ServerReflectionRequest { list_services = 7 } → field 7, wire type 2, empty string "" is "*" by convention.
  const req = Buffer.from([0x3a, 0x01, 0x2a]);
  try {
    return await new Promise<string[]>((resolve, reject) => {
      const call = c.makeBidiStreamRequest('/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo', (b: Buffer) => b, (b: Buffer) => b);
      call.on('data', (buf: Buffer) => {
        resolve([...buf.toString('latin1').matchAll(/[a-zA-Z][\w.]+Service|grpc\.health\.v1\.Health/g)].map((m) => m[0]));
        call.end();
      });
      call.on('error', reject);
      call.write(req);
    });
  } finally {
    c.close();
  }
}

/** Client options for TLS to 127.0.0.1 checked against the certificate's 'localhost' name (no IP as SNI). */
function tlsTo(files: Parameters<typeof clientSecurity>[0]): ClientOptions {
  return { ...clientSecurity(files), channelOptions: { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' } };
}

describe('production: TLS and mutual TLS', function () {
  this.timeout(60_000);
  let pki: Pki;
  let tmp: string;

  before(function () {
    if (!haveOpenssl()) {
      for (const t of this.test!.parent!.tests) t.title += ' [pending: openssl is not installed]';
      this.skip();
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'introspect-pki-'));
    pki = makePki(tmp);
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves TLS: a client trusting the CA gets through, a plaintext client does not', async () => {
    const ts = await startTestServer({ config: { tlsCert: pki.serverCert, tlsKey: pki.serverKey } });
    const good = new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.caCert }));
    const untrusting = new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.strangerCa }));
    try {
      assert.deepEqual(await good.listModels(), []);
      assert.equal(await healthOf(ts.address, credentials.createSsl(fs.readFileSync(pki.caCert)), { 'grpc.ssl_target_name_override': 'localhost' }), SERVING);
      assert.equal((await grpcError(() => ts.client.listModels({ timeoutMs: 5000 }))).code, status.UNAVAILABLE, 'plaintext refused');
      assert.equal((await grpcError(() => untrusting.listModels({ timeoutMs: 5000 }))).code, status.UNAVAILABLE, 'server certificate from an unknown CA refused');
    } finally {
      good.close();
      untrusting.close();
      await ts.close();
    }
  });

  it('mutual TLS: requires a client certificate signed by the client CA; works with a token as well', async () => {
    const tokenFile = path.join(tmp, 'tokens');
    fs.writeFileSync(tokenFile, TOKEN_A + '\n');
    const ts = await startTestServer({
      config: { tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsClientCa: pki.caCert, authTokenFile: tokenFile },
    });
    const clients = {
      full: new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.caCert, tlsCert: pki.clientCert, tlsKey: pki.clientKey, tokenFile })),
      noToken: new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.caCert, tlsCert: pki.clientCert, tlsKey: pki.clientKey })),
      noCert: new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.caCert, tokenFile })),
      stranger: new IntrospectClient(ts.address, tlsTo({ tlsCa: pki.caCert, tlsCert: pki.strangerCert, tlsKey: pki.strangerKey, tokenFile })),
    };
    try {
      assert.deepEqual(await clients.full.listModels(), []);
      assert.equal((await grpcError(() => clients.noToken.listModels())).code, status.UNAUTHENTICATED);
      assert.equal((await grpcError(() => clients.noCert.listModels({ timeoutMs: 5000 }))).code, status.UNAVAILABLE, 'no client certificate');
      assert.equal((await grpcError(() => clients.stranger.listModels({ timeoutMs: 5000 }))).code, status.UNAVAILABLE, 'client certificate from another CA');
    } finally {
      for (const c of Object.values(clients)) c.close();
      await ts.close();
    }
  });

  it('the CLI connects with --tls-ca/--tls-cert/--tls-key and --token-file or $INTROSPECT_TOKEN', async () => {
    const tokenFile = path.join(tmp, 'cli-tokens');
    fs.writeFileSync(tokenFile, TOKEN_B + '\n');
    const ts = await startTestServer({
      config: { tlsCert: pki.serverCert, tlsKey: pki.serverKey, tlsClientCa: pki.caCert, authTokenFile: tokenFile },
    });
    const cli = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const io: CliIo = { stdout: (t) => (out += t), stderr: (t) => (err += t), readStdin: async () => '', stderrIsTty: false };
      const code = await runCli(['--server', `localhost:${ts.server.port}`, '--json', ...args], io, env);
      return { code, out, err };
    };
    const tls = ['--tls-ca', pki.caCert, '--tls-cert', pki.clientCert, '--tls-key', pki.clientKey];
    try {
      const ok = await cli([...tls, '--token-file', tokenFile, 'models', 'list']);
      assert.equal(ok.code, 0, ok.err);
      const viaEnv = await cli([...tls, 'models', 'list'], { INTROSPECT_TOKEN: TOKEN_B });
      assert.equal(viaEnv.code, 0, viaEnv.err);
      const noToken = await cli([...tls, 'models', 'list']);
      assert.equal(noToken.code, 1);
      assert.match(noToken.err, /UNAUTHENTICATED/);
      const wrong = await cli([...tls, 'models', 'list'], { INTROSPECT_TOKEN: 'nope' });
      assert.equal(wrong.code, 1);
      assert.match(wrong.err, /PERMISSION_DENIED/);
      const halfTls = await cli(['--tls-ca', pki.caCert, '--tls-cert', pki.clientCert, 'models', 'list']);
      assert.equal(halfTls.code, 2);
      assert.match(halfTls.err, /--tls-cert and --tls-key go together/);
    } finally {
      await ts.close();
    }
  });

  it('refuses to start with half a TLS configuration or unreadable files', async () => {
    await assert.rejects(startTestServer({ config: { tlsCert: pki.serverCert } }), /needs both --tls-cert and --tls-key/);
    await assert.rejects(startTestServer({ config: { tlsCert: pki.serverCert, tlsKey: path.join(tmp, 'nope.key') } }), /--tls-key .*ENOENT/);
    assert.throws(() => clientSecurity({ tlsCert: pki.clientCert }), /go together/);
  });
});
