/**
 * Engines by registration, in the pattern of onnxruntime-common's registerBackend / resolveBackend: an
 * engine is registered by name with a priority and a factory that takes the device options. A set of
 * engines (`EngineSet`) starts each one lazily, once, on first use; resolving a list of names (or none:
 * every registered engine, highest priority first) gives the first that starts, falling back to the next
 * on failure, and when all fail throws one error that carries every engine's message. The built-in
 * engines are registered in ./index.ts; nothing else needs to know their names.
 */
import { failedPrecondition, IntrospectError, invalidArgument } from '../errors';
import type { Engine, EngineStatus } from './engine';

/** What every engine is offered when it starts; each takes what applies to it. */
export interface EngineSetup {
  /**
   * Requested device. An engine that lists `devices` gets it where listed; it picks its own where the device
   * is another engine's, and refuses one that no engine lists. An engine that lists none picks its own.
   */
  device?: string;
  /** Worker threads (engines with workers; absent: the engine's default). */
  workers?: number;
  /** Threads per worker (absent: the engine's default). */
  intraOpThreads?: number;
  log?: (message: string) => void;
  /** Options for one engine only, by engine name (merged over the common ones above). */
  options?: Readonly<Record<string, object | undefined>>;
}

/** An engine as a factory makes it: not started until `ready()`. */
export interface StartingEngine extends Engine {
  /** Starts the engine (workers, backend) once; resolves with its status. */
  ready(): Promise<EngineStatus>;
  /** Worker threads that run calls in parallel (1 where the engine runs on the calling thread). */
  readonly workers?: number;
}

export type EngineFactory = (setup: EngineSetup) => StartingEngine;

export interface EngineRegistration {
  name: string;
  /** Higher first when no names are given. */
  priority: number;
  /** Devices the engine can be asked for (the first is its default); [] where it chooses its own. */
  devices: readonly string[];
  factory: EngineFactory;
}

export class EngineRegistry {
  private readonly entries = new Map<string, EngineRegistration>();

  /**
   * Registers (or replaces, with the same factory, raises the priority of) an engine. Re-registering a
   * name with another factory is refused: names are how requests choose an engine.
   */
  register(name: string, factory: EngineFactory, priority: number, devices: readonly string[] = []): void {
    if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw invalidArgument(`engine name '${name}' must be lower-case letters, digits, '_' or '-'`);
    if (!Number.isFinite(priority)) throw invalidArgument(`engine ${name}: priority must be a finite number, got ${priority}`);
    const old = this.entries.get(name);
    if (old && old.factory !== factory) throw invalidArgument(`engine '${name}' is already registered with another factory`);
    if (old && old.priority > priority) return;
    this.entries.set(name, { name, priority, devices: [...devices], factory });
  }

  /** Registered names, highest priority first (registration order among equals). */
  names(): string[] {
    return [...this.entries.values()].sort((a, b) => b.priority - a.priority).map((e) => e.name);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The registration of `name`; INVALID_ARGUMENT naming the known engines where there is none. */
  get(name: string): EngineRegistration {
    const e = this.entries.get(name);
    if (!e) throw invalidArgument(`unknown engine '${name}' (known: ${this.names().join(', ') || 'none'})`);
    return e;
  }

  /** Every device some registered engine can be asked for, in registration order. */
  devices(): string[] {
    return [...new Set([...this.entries.values()].flatMap((e) => e.devices))];
  }

  /** A set of engines of this registry, each started on first use with `setup`. */
  engines(setup: EngineSetup = {}): EngineSet {
    return new EngineSet(this, setup);
  }
}

interface Slot {
  /** Made by the factory (not started yet), or the factory's error. */
  made?: StartingEngine;
  madeError?: unknown;
  started?: Promise<StartingEngine>;
  startError?: unknown;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The engines of one process. Each is made by its factory on first use and started (`ready()`) once; a
 * failure to make or start one is remembered and not retried.
 */
export class EngineSet {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(
    readonly registry: EngineRegistry,
    private readonly setup: EngineSetup,
  ) {}

  private slot(name: string): Slot {
    let slot = this.slots.get(name);
    if (!slot) this.slots.set(name, (slot = {}));
    return slot;
  }

  /** Engine `name` as its factory made it (once), started or not; throws the factory's error. */
  instance(name: string): StartingEngine {
    const reg = this.registry.get(name);
    const s = this.slot(name);
    if (s.made) return s.made;
    if (s.madeError !== undefined) throw s.madeError;
    if (this.closed) throw failedPrecondition('the engines are closed');
    try {
      const { options, ...common } = this.setup;
      if (reg.devices.length > 0 && common.device !== undefined && !reg.devices.includes(common.device)) {
        // Another engine's device: this one chooses its own. A device no engine knows is refused.
        if (!this.registry.devices().includes(common.device)) throw invalidArgument(`device '${common.device}' is not one of ${reg.devices.join(', ')}`);
        common.device = undefined;
      }
      s.made = reg.factory({ ...common, ...(options?.[name] ?? {}) });
      return s.made;
    } catch (err) {
      s.madeError = err;
      throw err;
    }
  }

  /** Makes and starts engine `name` (once); rejects with its error, the same one on every later call. */
  start(name: string): Promise<StartingEngine> {
    try {
      this.registry.get(name);
    } catch (err) {
      return Promise.reject(err);
    }
    const s = this.slot(name);
    s.started ??= (async () => {
      const engine = this.instance(name);
      await engine.ready();
      return engine;
    })().catch((err: unknown) => {
      s.startError = err;
      throw err;
    });
    return s.started;
  }

  /**
   * The first of `names` (default: every registered engine, highest priority first) that starts. Where
   * none does, one error (INVALID_ARGUMENT where every failure was one, FAILED_PRECONDITION otherwise)
   * that names each engine with its message.
   */
  async resolve(names?: readonly string[]): Promise<StartingEngine> {
    const order = names && names.length > 0 ? [...names] : this.registry.names();
    for (const n of order) this.registry.get(n);
    const errors: Array<[string, unknown]> = [];
    for (const n of order) {
      try {
        return await this.start(n);
      } catch (err) {
        errors.push([n, err]);
      }
    }
    if (errors.length === 0) throw failedPrecondition('no engine is registered');
    const message = `no engine could be started: ${errors.map(([n, e]) => `[${n}] ${messageOf(e)}`).join('; ')}`;
    const invalid = errors.every(([, e]) => e instanceof IntrospectError && e.kind === 'invalid-argument');
    throw invalid ? invalidArgument(message) : failedPrecondition(message);
  }

  /** Starts every one of `names` (default: all registered); rejects with the first failure, naming its engine. */
  async startAll(names: readonly string[] = this.registry.names()): Promise<StartingEngine[]> {
    return Promise.all(
      names.map((n) =>
        this.start(n).catch((err: unknown) => {
          throw err instanceof IntrospectError ? new IntrospectError(err.kind, `engine ${n}: ${err.message}`) : new Error(`engine ${n}: ${messageOf(err)}`);
        }),
      ),
    );
  }

  /**
   * Engine `name` for a request: INVALID_ARGUMENT naming the known engines for an unknown name,
   * FAILED_PRECONDITION where it could not be made or started.
   */
  get(name: string): StartingEngine {
    this.registry.get(name);
    const s = this.slots.get(name);
    const failed = s?.madeError ?? s?.startError;
    if (failed !== undefined) throw failedPrecondition(`engine ${name} failed to start: ${messageOf(failed)}`);
    return this.instance(name);
  }

  /** The engines made so far and not failed, highest priority first. */
  made(): StartingEngine[] {
    return this.registry.names().flatMap((n) => {
      const s = this.slots.get(n);
      return s?.made && s.startError === undefined ? [s.made] : [];
    });
  }

  /** Closes every engine made; later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.slots.values()].map((s) => s.made?.close()));
  }
}
