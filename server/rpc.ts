/**
 * Handler plumbing: turns plain async functions into grpc-js handlers. A handler gets the decoded
 * request and an RpcContext (AbortSignal, logger, metadata) and returns a value (unary, client
 * stream) or an async iterable (server stream); errors become statuses through server/errors.ts.
 *
 *   getModel: unary(deps, async (req: GetModelRequest) => toModelInfo(await models.get(req.name))),
 *   evaluate: serverStream(deps, (req, ctx) => evaluateStream(req, ctx.signal)),
 */
import type {
  Metadata,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  sendUnaryData,
} from '@grpc/grpc-js';
import { IntrospectError } from '../services/errors';
import { decodedRequest } from './decode';
import { statusName, toStatus, type ErrorStatus } from './errors';
import type { Logger } from './log';
import { idleLimited } from './idle-timeout';
import { callSignal, reasonOf, writeAll, type CallSignal, type ServerSurfaceCall } from './streaming';

export interface RpcContext {
  signal: AbortSignal;
  log: Logger;
  metadata: Metadata;
  /** "/introspect.v1.ModelService/LoadModel" */
  method: string;
}

/** The calls in flight, so shutdown can wait for them and cancel what is left after the grace period. */
export class ActiveCalls {
  private readonly calls = new Set<CallSignal>();
  private idleWaiters: Array<() => void> = [];

  get size(): number {
    return this.calls.size;
  }

  track(cs: CallSignal): () => void {
    this.calls.add(cs);
    return () => {
      cs.dispose();
      this.calls.delete(cs);
      if (this.calls.size === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    };
  }

  /** Resolves once no call is in flight. */
  idle(): Promise<void> {
    if (this.calls.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  abortAll(reason: IntrospectError): void {
    for (const c of this.calls) c.abort(reason);
  }
}

export interface RpcDeps {
  log: Logger;
  calls: ActiveCalls;
  /** Most time between two messages of a client stream (undefined = no limit). */
  streamIdleMs?: number;
}

function begin(deps: RpcDeps, call: ServerSurfaceCall): { ctx: RpcContext; end: (code: string) => void } {
  const cs = callSignal(call);
  const untrack = deps.calls.track(cs);
  const method = call.getPath();
  const log = deps.log.child({ method });
  const started = performance.now();
  const end = (code: string): void => {
    untrack();
    log.debug('call finished', { code, ms: Math.round(performance.now() - started) });
  };
  return { ctx: { signal: cs.signal, log, metadata: call.metadata, method }, end };
}

/** The status for an error, and the end of the call's bookkeeping. */
function failed(err: unknown, ctx: RpcContext, end: (code: string) => void): ErrorStatus {
  const st = toStatus(err, ctx.log, { method: ctx.method });
  end(statusName(st.code));
  return st;
}

export function unary<Req, Res>(
  deps: RpcDeps,
  fn: (req: Req, ctx: RpcContext) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback: sendUnaryData<Res>) => {
    const { ctx, end } = begin(deps, call);
    const done = (res: Res): void => {
      end('OK');
      callback(null, res);
    };
    Promise.resolve()
      .then(() => fn(decodedRequest(call.request), ctx))
      .then(done, (err: unknown) => callback(failed(err, ctx, end)));
  };
}

export function serverStream<Req, Res>(
  deps: RpcDeps,
  fn: (req: Req, ctx: RpcContext) => AsyncIterable<Res>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const { ctx, end } = begin(deps, call);
    const done = (): void => {
      end('OK');
      call.end();
    };
    Promise.resolve()
      .then(() => writeAll(call, fn(decodedRequest(call.request), ctx), ctx.signal))
      .then(done, (err: unknown) => call.emit('error', failed(err, ctx, end)));
  };
}

/** The request messages of a client stream, stopping with the signal's reason when it fires. */
async function* messages<Req>(source: AsyncIterable<Req>, signal: AbortSignal): AsyncGenerator<Req> {
  for await (const m of source) {
    if (signal.aborted) throw reasonOf(signal);
    yield decodedRequest(m);
  }
  if (signal.aborted) throw reasonOf(signal);
}

export function clientStream<Req, Res>(
  deps: RpcDeps,
  fn: (requests: AsyncIterable<Req>, ctx: RpcContext) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback: sendUnaryData<Res>) => {
    const { ctx, end } = begin(deps, call);
    const done = (res: Res): void => {
      end('OK');
      callback(null, res);
    };
    Promise.resolve()
      .then(() => fn(messages<Req>(idleLimited<Req>(call, deps.streamIdleMs, ctx.method.slice(ctx.method.lastIndexOf('/') + 1), ctx.signal), ctx.signal), ctx))
      .then(done, (err: unknown) => callback(failed(err, ctx, end)));
  };
}
