/**
 * Typed promise / async-iterator wrappers over the generated grpc-js clients.
 *
 *   const c = new IntrospectClient('localhost:50051');
 *   const info = await c.loadModel({ name: 'vgg', path: 'vgg11_cifar10.onnx' });
 *   for await (const msg of c.evaluate({ model: 'vgg', dataset: 'cifar', limit: 1000 })) { ... }
 *   c.close();
 *
 * Requests are partial (unset fields take their proto defaults). Every call takes optional
 * CallOpts: a deadline, metadata and an AbortSignal (cancels the call). Breaking out of a stream's
 * loop cancels the call.
 */
import * as fs from 'node:fs';
import {
  Client,
  InterceptingCall,
  Metadata,
  credentials as grpcCredentials,
  status,
  type CallOptions,
  type ChannelCredentials,
  type ClientReadableStream,
  type ClientUnaryCall,
  type Interceptor,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  AnalysisServiceClient,
  ClassAveragesRequest,
  ConfidenceMatrixRequest,
  DatasetExamplesRequest,
  LayerProbesRequest,
  NeuronImagesRequest,
  PruneRequest,
  SanityCheckRequest,
  SimilarityRequest,
  type ClassAverage,
  type ConfidenceMatrixResponse,
  type DatasetExample,
  type LayerProbeResponse,
  type NeuronImage,
  type PruneResponse,
  type SanityCheckResponse,
  type SimilarityResponse,
} from '../api/generated/introspect/v1/analysis';
import {
  DatasetServiceClient,
  GetSamplesRequest,
  RegisterDatasetRequest,
  type DatasetInfo,
  type Sample,
} from '../api/generated/introspect/v1/datasets';
import {
  EvaluateRequest,
  LoadModelRequest,
  ModelServiceClient,
  PredictRequest,
  UploadModelHeader,
  type DeepPartial,
  type EvaluateResponse,
  type ModelInfo,
  type PredictResponse,
} from '../api/generated/introspect/v1/models';
import type { MethodInfo } from '../api/methods';

/** Partial requests: what ts-proto's `fromPartial` accepts (unset fields take proto defaults). */
type Partial1<T> = DeepPartial<T>;

export interface CallOpts {
  /** Milliseconds from now. */
  timeoutMs?: number;
  metadata?: Metadata;
  signal?: AbortSignal;
}

export interface ClientOptions {
  credentials?: ChannelCredentials;
  /** Bearer token sent as `authorization: Bearer <token>` on every call (see clientSecurity()). */
  token?: string;
  /** Channel options passed to grpc-js. */
  channelOptions?: Record<string, string | number>;
}

/** Largest message the client accepts (samples with PNGs, neuron images). */
const MAX_RECEIVE_BYTES = 64 * 1024 * 1024;

function callOptions(o: CallOpts | undefined): Partial<CallOptions> {
  return o?.timeoutMs !== undefined ? { deadline: Date.now() + o.timeoutMs } : {};
}

type UnaryFn<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => ClientUnaryCall;

function unaryCall<Req, Res>(fn: UnaryFn<Req, Res>, req: Req, o?: CallOpts): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    const call = fn(req, o?.metadata ?? new Metadata(), callOptions(o), (err, res) => {
      o?.signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(res);
    });
    const onAbort = (): void => call.cancel();
    if (o?.signal?.aborted) call.cancel();
    else o?.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A server stream as an async iterable; leaving the loop early cancels the call. */
export async function* streamOf<T>(call: ClientReadableStream<T>, signal?: AbortSignal): AsyncGenerator<T> {
  const onAbort = (): void => call.cancel();
  if (signal?.aborted) call.cancel();
  else signal?.addEventListener('abort', onAbort, { once: true });
  let finished = false;
  try {
    for await (const msg of call) yield msg as T;
    finished = true;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finished) call.cancel();
  }
}

/** A client interceptor adding `authorization: Bearer <token>` to each call's metadata. */
export function bearerInterceptor(token: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

export interface SecurityFiles {
  /** PEM CA bundle to verify the server with (TLS when this, or a client certificate, is given). */
  tlsCa?: string;
  /** PEM client certificate and key (mutual TLS). */
  tlsCert?: string;
  tlsKey?: string;
  /** File whose first line that is neither blank nor a `#` comment is the bearer token. */
  tokenFile?: string;
  /** The bearer token itself (INTROSPECT_TOKEN); the token file wins when both are given. */
  token?: string;
}

/** Client options from TLS/token files: TLS when any TLS file is given, else plaintext. */
export function clientSecurity(f: SecurityFiles): Pick<ClientOptions, 'credentials' | 'token'> {
  const out: Pick<ClientOptions, 'credentials' | 'token'> = {};
  if (f.tlsCa !== undefined || f.tlsCert !== undefined || f.tlsKey !== undefined) {
    if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
    const read = (p: string | undefined): Buffer | null => (p === undefined ? null : fs.readFileSync(p));
    out.credentials = grpcCredentials.createSsl(read(f.tlsCa), read(f.tlsKey), read(f.tlsCert));
  }
  if (f.tokenFile !== undefined) {
    const token = fs.readFileSync(f.tokenFile, 'utf8').split(/\r?\n/).map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#'));
    if (token === undefined) throw new Error(`token file ${f.tokenFile} is empty`);
    out.token = token;
  } else if (f.token !== undefined && f.token !== '') out.token = f.token;
  return out;
}

export class IntrospectClient {
  readonly models: ModelServiceClient;
  readonly datasets: DatasetServiceClient;
  readonly analysis: AnalysisServiceClient;
  /** A raw client on the same channel, for generic calls. */
  private readonly raw: Client;

  constructor(
    readonly address: string,
    opts: ClientOptions = {},
  ) {
    const creds = opts.credentials ?? grpcCredentials.createInsecure();
    const channelOptions = {
      'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
      ...opts.channelOptions,
      ...(opts.token !== undefined ? { interceptors: [bearerInterceptor(opts.token)] } : {}),
    };
    this.models = new ModelServiceClient(address, creds, channelOptions);
    const channelOverride = this.models.getChannel();
    this.datasets = new DatasetServiceClient(address, creds, { ...channelOptions, channelOverride });
    this.analysis = new AnalysisServiceClient(address, creds, { ...channelOptions, channelOverride });
    this.raw = new Client(address, creds, { ...channelOptions, channelOverride });
  }

  close(): void {
    this.models.close();
  }

  /** Resolves once the channel is connected (rejects after `timeoutMs`). */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.models.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
  }

  // ModelService ---------------------------------------------------------------------------------

  loadModel(req: Partial1<LoadModelRequest>, o?: CallOpts): Promise<ModelInfo> {
    return unaryCall(this.models.loadModel.bind(this.models), LoadModelRequest.fromPartial(req), o);
  }

  /** Streams `bytes` as an upload: the header, then chunks of `chunkBytes`. */
  uploadModel(
    header: Partial1<UploadModelHeader>,
    bytes: Uint8Array,
    o?: CallOpts & { chunkBytes?: number },
  ): Promise<ModelInfo> {
    const chunk = Math.max(1, o?.chunkBytes ?? 1024 * 1024);
    const h = UploadModelHeader.fromPartial({ ...header, sizeBytes: header.sizeBytes ?? bytes.byteLength });
    return new Promise<ModelInfo>((resolve, reject) => {
      let answered = false;
      let wake: (() => void) | undefined;
      const call = this.models.uploadModel(o?.metadata ?? new Metadata(), callOptions(o), (err, res) => {
        answered = true;
        wake?.();
        if (err) reject(err);
        else resolve(res);
      });
      if (o?.signal) o.signal.addEventListener('abort', () => call.cancel(), { once: true });
      /** Writes one message, waiting for 'drain' when the buffer is full; false once the server answered. */
      const send = (msg: Parameters<typeof call.write>[0]): Promise<boolean> =>
        new Promise((ok) => {
          if (answered) return ok(false);
          if (call.write(msg)) return ok(true);
          wake = () => ok(!answered);
          call.once('drain', wake);
        });
      const write = async (): Promise<void> => {
        if (!(await send({ part: { $case: 'header', value: h } }))) return;
        for (let at = 0; at < bytes.byteLength; at += chunk) {
          const part = Buffer.from(bytes.subarray(at, Math.min(at + chunk, bytes.byteLength)));
          if (!(await send({ part: { $case: 'chunk', value: part } }))) return; // the server answered early (an error)
        }
        call.end();
      };
      write().catch(() => {});
    });
  }

  getModel(name: string, o?: CallOpts): Promise<ModelInfo> {
    return unaryCall(this.models.getModel.bind(this.models), { name }, o);
  }

  async listModels(o?: CallOpts): Promise<ModelInfo[]> {
    return (await unaryCall(this.models.listModels.bind(this.models), {}, o)).models;
  }

  async unloadModel(name: string, o?: CallOpts): Promise<boolean> {
    return (await unaryCall(this.models.unloadModel.bind(this.models), { name }, o)).unloaded;
  }

  predict(req: Partial1<PredictRequest>, o?: CallOpts): Promise<PredictResponse> {
    return unaryCall(this.models.predict.bind(this.models), PredictRequest.fromPartial(req), o);
  }

  evaluate(req: Partial1<EvaluateRequest>, o?: CallOpts): AsyncGenerator<EvaluateResponse> {
    return streamOf(this.models.evaluate(EvaluateRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  // DatasetService -------------------------------------------------------------------------------

  registerDataset(req: Partial1<RegisterDatasetRequest>, o?: CallOpts): Promise<DatasetInfo> {
    return unaryCall(this.datasets.registerDataset.bind(this.datasets), RegisterDatasetRequest.fromPartial(req), o);
  }

  getDataset(name: string, o?: CallOpts): Promise<DatasetInfo> {
    return unaryCall(this.datasets.getDataset.bind(this.datasets), { name }, o);
  }

  async listDatasets(o?: CallOpts): Promise<DatasetInfo[]> {
    return (await unaryCall(this.datasets.listDatasets.bind(this.datasets), {}, o)).datasets;
  }

  async unregisterDataset(name: string, o?: CallOpts): Promise<boolean> {
    return (await unaryCall(this.datasets.unregisterDataset.bind(this.datasets), { name }, o)).unregistered;
  }

  getSamples(req: Partial1<GetSamplesRequest>, o?: CallOpts): AsyncGenerator<Sample> {
    return streamOf(this.datasets.getSamples(GetSamplesRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  // AnalysisService ------------------------------------------------------------------------------

  classAverages(req: Partial1<ClassAveragesRequest>, o?: CallOpts): AsyncGenerator<ClassAverage> {
    return streamOf(this.analysis.classAverages(ClassAveragesRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  confidenceMatrix(req: Partial1<ConfidenceMatrixRequest>, o?: CallOpts): Promise<ConfidenceMatrixResponse> {
    return unaryCall(this.analysis.confidenceMatrix.bind(this.analysis), ConfidenceMatrixRequest.fromPartial(req), o);
  }

  neuronImages(req: Partial1<NeuronImagesRequest>, o?: CallOpts): AsyncGenerator<NeuronImage> {
    return streamOf(this.analysis.neuronImages(NeuronImagesRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  similarity(req: Partial1<SimilarityRequest>, o?: CallOpts): AsyncGenerator<SimilarityResponse> {
    return streamOf(this.analysis.similarity(SimilarityRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  datasetExamples(req: Partial1<DatasetExamplesRequest>, o?: CallOpts): AsyncGenerator<DatasetExample> {
    return streamOf(this.analysis.datasetExamples(DatasetExamplesRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  sanityCheck(req: Partial1<SanityCheckRequest>, o?: CallOpts): AsyncGenerator<SanityCheckResponse> {
    return streamOf(this.analysis.sanityCheck(SanityCheckRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  prune(req: Partial1<PruneRequest>, o?: CallOpts): AsyncGenerator<PruneResponse> {
    return streamOf(this.analysis.prune(PruneRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  layerProbes(req: Partial1<LayerProbesRequest>, o?: CallOpts): AsyncGenerator<LayerProbeResponse> {
    return streamOf(this.analysis.layerProbes(LayerProbesRequest.fromPartial(req), o?.metadata ?? new Metadata(), callOptions(o)), o?.signal);
  }

  // Generic --------------------------------------------------------------------------------------

  /**
   * Calls any method with decoded request messages (client streams take several), yielding the
   * decoded responses (one for unary and client-stream methods).
   */
  async *call(method: MethodInfo, requests: unknown[], o?: CallOpts): AsyncGenerator<unknown> {
    const serialize = (m: unknown): Buffer => Buffer.from(method.request.encode(m).finish());
    const deserialize = (b: Buffer): unknown => method.response.decode(b);
    const md = o?.metadata ?? new Metadata();
    const opts = callOptions(o);
    if (!method.requestStream && requests.length !== 1) {
      throw Object.assign(new Error(`${method.method} takes exactly one request`), { code: status.INVALID_ARGUMENT });
    }
    if (method.responseStream) {
      if (method.requestStream) throw new Error('bidirectional streams are not used by this API');
      yield* streamOf(this.raw.makeServerStreamRequest(method.path, serialize, deserialize, requests[0], md, opts), o?.signal);
      return;
    }
    const res = await new Promise<unknown>((resolve, reject) => {
      const cb = (err: ServiceError | null, value?: unknown): void => (err ? reject(err) : resolve(value));
      if (method.requestStream) {
        const call = this.raw.makeClientStreamRequest(method.path, serialize, deserialize, md, opts, cb);
        for (const r of requests) call.write(r);
        call.end();
      } else {
        this.raw.makeUnaryRequest(method.path, serialize, deserialize, requests[0], md, opts, cb);
      }
    });
    yield res;
  }
}
