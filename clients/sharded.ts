/**
 * A client that spreads one Similarity or Prune job over several replicas of the server.
 *
 *   const sc = new ShardedClient(['10.0.0.1:50051', '10.0.0.2:50051', '10.0.0.3:50051']);
 *   await sc.ensureEverywhere({ name: 'cnn', path: 'mnist_cnn.onnx' }, { name: 'mnist', path: 'builtin:mnist' });
 *   for await (const msg of sc.similarity({ model: 'cnn', dataset: 'mnist' })) { ... }
 *   sc.close();
 *
 * Similarity is split by (class, layer) and Prune by (layer, criterion); each shard is one ordinary
 * call to one server. The merged streams look like a single server's: Similarity yields the
 * (class, layer) items class by class, layer by layer in request order, then a summary recomputed
 * from the merged values with the server's own `buildCurves`/`meanStd` (api/curves.ts); Prune yields
 * the baseline first and the results layer by layer, criterion by criterion, fraction by fraction. Progress
 * messages in between sum the shards' progress (totals of shards not started yet are estimated).
 *
 * One target (e.g. `dns:///introspect-headless.ns.svc.cluster.local:50051`, a Kubernetes headless
 * Service) with `replicas: N` uses one channel with the grpc-js `round_robin` load-balancing policy
 * over every address the name resolves to, and N × perServer shards in flight.
 */
import { status } from '@grpc/grpc-js';
import { PruneCriterion, PruneRequest, SimilarityRequest, type PruneResponse, type SimilarityResponse } from '../api/generated/introspect/v1/analysis';
import type { DatasetInfo, RegisterDatasetRequest } from '../api/generated/introspect/v1/datasets';
import type { DeepPartial, LoadModelRequest, ModelInfo } from '../api/generated/introspect/v1/models';
import { IntrospectClient, type CallOpts, type ClientOptions } from './client';
import { ShardedJobError, runShards, type RetryEvent, type RetryPolicy, type ShardProgress, type ShardSpec } from './sharded-runner';
import { buildCurves, meanStd, type LayerStats } from '../api/curves';

export { ShardedJobError, type RetryEvent, type RetryPolicy, type ShardFailure } from './sharded-runner';

/** grpc-js channel option selecting round_robin over every resolved address. */
export const ROUND_ROBIN_SERVICE_CONFIG = JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] });

/** Every criterion, in the server's default order. */
const ALL_CRITERIA: PruneCriterion[] = [
  PruneCriterion.PRUNE_CRITERION_SIMILARITY_TOP,
  PruneCriterion.PRUNE_CRITERION_SIMILARITY_BOTTOM,
  PruneCriterion.PRUNE_CRITERION_RANDOM,
  PruneCriterion.PRUNE_CRITERION_L1,
  PruneCriterion.PRUNE_CRITERION_APOZ,
];

export interface ShardedClientOptions extends ClientOptions, RetryPolicy {
  /** With a single target: how many replicas stand behind it (default 1). */
  replicas?: number;
  /** Told of every retry (also counted in `retries`). */
  onRetry?: (e: RetryEvent) => void;
}

function invalid(details: string): ShardedJobError {
  return new ShardedJobError(status.INVALID_ARGUMENT, details, []);
}

function noRepeats(values: number[], name: string): void {
  if (new Set(values).size !== values.length) throw invalid(`${name} are repeated: ${values.join(', ')}`);
}

/** Sums shard progress; shards not heard from yet count as the mean total of those heard from. */
class ProgressSum {
  private readonly latest: Array<ShardProgress | undefined>;

  constructor(shards: number) {
    this.latest = new Array<ShardProgress | undefined>(shards).fill(undefined);
  }

  set(shard: number, p: ShardProgress): void {
    this.latest[shard] = p.total > 0 ? p : undefined;
  }

  finish(shard: number): void {
    const p = this.latest[shard];
    if (p) this.latest[shard] = { done: p.total, total: p.total };
  }

  get(): { done: number; total: number } {
    const known = this.latest.filter((p): p is ShardProgress => p !== undefined);
    const done = known.reduce((n, p) => n + p.done, 0);
    const knownTotal = known.reduce((n, p) => n + p.total, 0);
    const unknown = this.latest.length - known.length;
    const total = knownTotal + (known.length > 0 ? Math.round((unknown * knownTotal) / known.length) : 0);
    return { done, total };
  }
}

export class ShardedClient {
  readonly clients: IntrospectClient[];
  /** Retries made by this client's jobs so far. */
  retries = 0;
  private readonly policy: RetryPolicy;
  private readonly singleTarget: boolean;

  constructor(
    targets: string[],
    private readonly opts: ShardedClientOptions = {},
  ) {
    if (targets.length === 0) throw new Error('ShardedClient needs at least one server address');
    const channelOptions = { 'grpc.service_config': ROUND_ROBIN_SERVICE_CONFIG, ...opts.channelOptions };
    this.clients = targets.map((t) => new IntrospectClient(t, { ...opts, channelOptions }));
    this.singleTarget = targets.length === 1 && (opts.replicas ?? 1) > 1;
    const perServer = opts.perServer ?? 2;
    this.policy = {
      perServer: this.singleTarget ? perServer * (opts.replicas ?? 1) : perServer,
      maxAttempts: opts.maxAttempts,
      backoffMs: opts.backoffMs,
      maxBackoffMs: opts.maxBackoffMs,
    };
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  /**
   * Loads the model and registers the data set on every server (one already there under the same
   * name is kept). Fails when the servers hold different model files under the name.
   */
  async ensureEverywhere(
    model?: DeepPartial<LoadModelRequest>,
    dataset?: DeepPartial<RegisterDatasetRequest>,
    o?: CallOpts,
  ): Promise<{ models: ModelInfo[]; datasets: DatasetInfo[] }> {
    const ensure = async <T>(make: () => Promise<T>, get: () => Promise<T>): Promise<T> => {
      try {
        return await make();
      } catch (err) {
        if ((err as { code?: unknown }).code === status.ALREADY_EXISTS) return get();
        throw err;
      }
    };
    const results = await Promise.all(
      this.clients.map(async (c) => ({
        model: model ? await ensure(() => c.loadModel(model, o), () => c.getModel(model.name ?? '', o)) : undefined,
        dataset: dataset ? await ensure(() => c.registerDataset(dataset, o), () => c.getDataset(dataset.name ?? '', o)) : undefined,
      })),
    );
    const models = results.flatMap((r) => (r.model ? [r.model] : []));
    const hashes = new Set(models.map((m) => m.sha256));
    if (hashes.size > 1) {
      const list = models.map((m, i) => `${this.clients[i].address}: ${m.sha256.slice(0, 12)}`).join(', ');
      throw new ShardedJobError(status.FAILED_PRECONDITION, `model '${model?.name}' differs between servers (${list})`, []);
    }
    return { models, datasets: results.flatMap((r) => (r.dataset ? [r.dataset] : [])) };
  }

  private run<Req, Res>(shards: ShardSpec<Req>[], call: (c: IntrospectClient, r: Req, o: CallOpts) => AsyncIterable<Res>, progressOf: (m: Res) => ShardProgress | undefined, o?: CallOpts) {
    return runShards<Req, Res>({
      ...this.policy,
      clients: this.clients,
      shards,
      call,
      progressOf,
      callOpts: { timeoutMs: o?.timeoutMs, metadata: o?.metadata },
      signal: o?.signal,
      restServerOnFailure: !this.singleTarget && this.clients.length > 1,
      onRetry: (e) => {
        this.retries++;
        this.opts.onRetry?.(e);
      },
    });
  }

  /** Conv layer indices and the analysed classes (the request's, or the server's defaults). */
  private async resolve(model: string, dataset: string, layers: number[], classes: number[] | undefined, o?: CallOpts): Promise<{ layers: number[]; classes: number[] }> {
    const needLayers = layers.length === 0;
    const needClasses = classes !== undefined && classes.length === 0;
    if (!needLayers && !needClasses) return { layers, classes: classes ?? [] };
    const c = this.clients[0];
    const info = await c.getModel(model, o);
    const resolvedLayers = needLayers ? info.convLayers.map((l) => l.index) : layers;
    let resolvedClasses = classes ?? [];
    if (needClasses) {
      const ds = await c.getDataset(dataset, o);
      const outputs = Number(info.output?.shape.at(-1) ?? -1);
      const n = Math.min(ds.classNames.length, outputs > 0 ? outputs : info.classNames.length);
      resolvedClasses = Array.from({ length: n }, (_, k) => k);
    }
    return { layers: resolvedLayers, classes: resolvedClasses };
  }

  /** Similarity, one shard per (class, layer). */
  async *similarity(req: DeepPartial<SimilarityRequest>, o?: CallOpts): AsyncGenerator<SimilarityResponse> {
    const base = SimilarityRequest.fromPartial(req);
    noRepeats(base.layers, 'layers');
    noRepeats(base.classes, 'classes');
    const { layers, classes } = await this.resolve(base.model, base.dataset, base.layers, base.classes, o);
    const shards: ShardSpec<SimilarityRequest>[] = classes.flatMap((c) =>
      layers.map((l) => ({ label: `class ${c} layer ${l}`, request: { ...base, classes: [c], layers: [l] } })),
    );
    const progress = new ProgressSum(shards.length);
    const finished: Array<SimilarityResponse[] | undefined> = new Array<SimilarityResponse[] | undefined>(shards.length).fill(undefined);
    const stats: LayerStats[][] = classes.map(() => []);
    let next = 0;
    let allCached = true;
    for await (const e of this.run(shards, (c, r, co) => c.similarity(r, co), (m) => m.progress, o)) {
      if (e.kind === 'progress') {
        progress.set(e.shard, e.progress);
        yield { progress: progress.get(), item: undefined, cached: false };
        continue;
      }
      progress.finish(e.shard);
      finished[e.shard] = e.messages;
      for (; next < shards.length && finished[next]; next++) {
        const msgs = finished[next]!;
        const item = msgs.find((m) => m.item?.$case === 'layer');
        if (item?.item?.$case !== 'layer') throw new ShardedJobError(status.INTERNAL, `shard ${shards[next].label}: the server sent no layer item`, []);
        const l = item.item.value;
        const { mean, std } = meanStd(l.values);
        stats[Math.floor(next / layers.length)].push({ mean, std, dead: l.dead.length });
        allCached &&= item.cached;
        finished[next] = [];
        yield { progress: progress.get(), item: item.item, cached: item.cached };
      }
    }
    const curves = buildCurves(classes, layers, stats);
    yield {
      progress: progress.get(),
      cached: allCached,
      item: {
        $case: 'summary',
        value: {
          classes: classes.length,
          layers: layers.length,
          mean: Array.from(curves.mean),
          std: Array.from(curves.std),
          meanOverClasses: Array.from(curves.meanOverClasses),
          stdOverClasses: Array.from(curves.stdOverClasses),
          deadCount: Array.from(curves.deadCount),
          layerIndices: [...curves.layers],
        },
      },
    };
  }

  /** Prune, one shard per (layer, criterion); each shard evaluates the baseline, sent once. */
  async *prune(req: DeepPartial<PruneRequest>, o?: CallOpts): AsyncGenerator<PruneResponse> {
    const base = PruneRequest.fromPartial(req);
    noRepeats(base.layers, 'layers');
    noRepeats(base.criteria, 'criteria');
    const { layers } = await this.resolve(base.model, base.dataset, base.layers, undefined, o);
    const criteria = base.criteria.length > 0 ? base.criteria : ALL_CRITERIA;
    const shards: ShardSpec<PruneRequest>[] = layers.flatMap((l) =>
      criteria.map((c) => ({ label: `layer ${l} ${PruneCriterion[c] ?? c}`, request: { ...base, layers: [l], criteria: [c] } })),
    );
    const progress = new ProgressSum(shards.length);
    const finished: Array<PruneResponse[] | undefined> = new Array<PruneResponse[] | undefined>(shards.length).fill(undefined);
    let baseline: number | undefined;
    let next = 0;
    for await (const e of this.run(shards, (c, r, co) => c.prune(r, co), (m) => m.progress, o)) {
      if (e.kind === 'progress') {
        progress.set(e.shard, e.progress);
        // A shard's first message carries the baseline (every shard evaluates the same one).
        baseline ??= e.message?.baselineAccuracy;
        if (baseline !== undefined) yield { progress: progress.get(), baselineAccuracy: baseline };
        continue;
      }
      progress.finish(e.shard);
      finished[e.shard] = e.messages;
      baseline ??= e.messages[0]?.baselineAccuracy ?? 0;
      for (; next < shards.length && finished[next]; next++) {
        for (const m of finished[next]!) if (m.result) yield { progress: progress.get(), baselineAccuracy: baseline, result: m.result };
        finished[next] = [];
      }
    }
  }
}
