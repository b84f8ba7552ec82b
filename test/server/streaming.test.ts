/**
 * The handler plumbing on a real grpc-js server: backpressure (a client that stops reading stops
 * the producer), cancellation and deadlines reaching the service as an aborted signal, and errors
 * mapped to statuses (internal ones without their details).
 */
import * as assert from 'node:assert/strict';
import { Client, Server, ServerCredentials, credentials, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { IntrospectError, invalidArgument } from '../../services/errors';
import { createLogger } from '../../server/log';
import { ActiveCalls, serverStream, type RpcContext } from '../../server/rpc';

const identity = (b: Buffer): Buffer => b;
const SERVICE = {
  run: {
    path: '/test.Streams/Run',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} as const;

const MANY = 200;
const BIG = 256 * 1024;

/** Polls until `cond` holds (fails after 30 s). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for: ${what}`);
}

describe('server: streaming plumbing', function () {
  this.timeout(60_000);
  const state = { produced: 0, closed: false, reason: undefined as IntrospectError | undefined };
  const logLines: string[] = [];
  const calls = new ActiveCalls();
  let server: Server;
  let client: Client;

  async function* behaviour(req: Buffer, ctx: RpcContext): AsyncGenerator<Buffer> {
    const mode = req.toString();
    try {
      if (mode === 'many') {
        for (let i = 0; i < MANY; i++) {
          state.produced++;
          yield Buffer.alloc(BIG, i % 256);
        }
      } else if (mode === 'wait') {
        yield Buffer.from('first');
        await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
        state.reason = ctx.signal.reason as IntrospectError;
        yield Buffer.from('never delivered');
      } else if (mode === 'fail') {
        yield Buffer.from('one');
        yield Buffer.from('two');
        throw invalidArgument('the request asked for a bad thing');
      } else {
        throw new Error('secret internal detail');
      }
    } finally {
      state.closed = true;
    }
  }

  before(async () => {
    const log = createLogger({ level: 'debug', write: (l) => void logLines.push(l) });
    server = new Server();
    server.addService(SERVICE, { run: serverStream({ log, calls }, behaviour) });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  beforeEach(() => {
    state.produced = 0;
    state.closed = false;
    state.reason = undefined;
  });
  after(() => {
    client?.close();
    server?.forceShutdown();
  });

  const open = (mode: string, deadline?: number): ClientReadableStream<Buffer> =>
    client.makeServerStreamRequest(SERVICE.run.path, identity, identity, Buffer.from(mode), deadline ? { deadline } : {});

  /** Reads everything; resolves with the messages and the final error (if any). */
  const readAll = (call: ClientReadableStream<Buffer>): Promise<{ messages: Buffer[]; error?: ServiceError }> =>
    new Promise((resolve) => {
      const messages: Buffer[] = [];
      call.on('data', (m: Buffer) => messages.push(m));
      call.on('error', (error: ServiceError) => resolve({ messages, error }));
      call.on('end', () => resolve({ messages }));
    });

  it('stops the producer while the client does not read, and resumes when it does', async () => {
    const call = open('many');
    const first = await new Promise<Buffer>((resolve) => call.once('data', resolve));
    call.pause();
    assert.equal(first.length, BIG);
    // Wait until the producer is blocked: its count stops moving.
    let last = -1;
    let stable = 0;
    await until(() => {
      stable = state.produced === last ? stable + 1 : 0;
      last = state.produced;
      return stable >= 5;
    }, 'the producer to stall');
    assert.ok(state.produced < MANY, `the producer ran ahead to ${state.produced} of ${MANY} while the client was paused`);
    const rest = readAll(call);
    call.resume();
    const { messages, error } = await rest;
    assert.equal(error, undefined);
    assert.equal(1 + messages.length, MANY);
    assert.equal(messages.at(-1)![0], (MANY - 1) % 256);
    assert.equal(state.produced, MANY);
    await until(() => calls.size === 0, 'the call to end');
  });

  it('turns a client cancel into an aborted signal and closes the producer', async () => {
    const call = open('wait');
    await new Promise((resolve) => call.once('data', resolve));
    call.on('error', () => {});
    call.cancel();
    await until(() => state.closed, 'the producer to close');
    assert.equal(state.reason?.kind, 'cancelled');
    await until(() => calls.size === 0, 'the call to end');
  });

  it('turns the deadline into an aborted signal and DEADLINE_EXCEEDED', async () => {
    const { messages, error } = await readAll(open('wait', Date.now() + 500));
    assert.equal(messages.length, 1);
    assert.equal(error?.code, status.DEADLINE_EXCEEDED);
    await until(() => state.closed, 'the producer to close');
    assert.equal(state.reason?.kind, 'deadline-exceeded');
  });

  it('sends the messages made before an error, then the mapped status', async () => {
    const { messages, error } = await readAll(open('fail'));
    assert.deepEqual(messages.map(String), ['one', 'two']);
    assert.equal(error?.code, status.INVALID_ARGUMENT);
    assert.equal(error?.details, 'the request asked for a bad thing');
  });

  it('answers INTERNAL without internals for unexpected errors, and logs them with the stack', async () => {
    const { error } = await readAll(open('bug'));
    assert.equal(error?.code, status.INTERNAL);
    assert.ok(!error!.details.includes('secret'), error!.details);
    const incident = /incident ([0-9a-f]+)/.exec(error!.details)?.[1];
    assert.ok(incident, error!.details);
    const logged = logLines.map((l) => JSON.parse(l) as { level: string; incident?: string; error?: { message: string; stack: string } }).find((r) => r.incident === incident);
    assert.equal(logged?.level, 'error');
    assert.equal(logged?.error?.message, 'secret internal detail');
    assert.match(logged?.error?.stack ?? '', /behaviour/);
  });
});
