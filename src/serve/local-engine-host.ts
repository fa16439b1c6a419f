/**
 * The engine core in a worker thread of this process (DESIGN §1: compute
 * never runs on the API event loop), on one process or driving a mesh of
 * rank processes. Everything crossing the thread boundary is a
 * structured-clone message (engine-messages.ts).
 */
import type { KvRingFromEngine, KvRingToEngine } from '../disagg/kv-ring.js';
import { Worker } from 'node:worker_threads';
import type { BackendChoice } from '../backend/native/select-backend.js';
import { TesseraError, type ErrorCode } from '../core/errors.js';
import type { EngineCoreOptions, StepStats } from '../engine/engine-core.js';
import type { HostMessage, WorkerMessage, WorkerSetup } from './engine-messages.js';
import type { SequenceRequest } from '../engine/sequence.js';
import type { KvFromEngine, KvRole, KvToEngine } from '../engine/kv-messages.js';
import { MeshControl } from './mesh-control.js';
import { EMPTY_STATS, newSequenceId, type EngineHost, type EngineLimits, type HostHealth, type SequenceId, type SequenceListener } from './engine-host.js';

export interface LocalEngineHostOptions {
  tokenizerPath?: string;
  core: EngineCoreOptions;
  backend?: BackendChoice;
  threads?: number;
  mesh?: WorkerSetup['mesh'];
  trace?: string;
  /** The engine thread's nice value (WorkerSetup.nice). */
  nice?: number;
}

interface Submitted {
  id: SequenceId;
  listener: SequenceListener;
}

export class LocalEngineHost implements EngineHost {
  /** By the core's sequence number, which never leaves this host. */
  private readonly submitted = new Map<number, Submitted>();
  private readonly numbers = new Map<SequenceId, number>();
  private readonly statsListeners: ((stats: StepStats) => void)[] = [];
  private readonly kvListeners: ((message: KvFromEngine) => void)[] = [];
  private readonly ringListeners: ((message: KvRingFromEngine) => void)[] = [];
  private latest: StepStats = EMPTY_STATS;
  private engineHealth: HostHealth = { ready: true, status: 'ready' };
  private nextNumber = 1;
  private closed = false;
  private exited = false;
  /** The mesh's admin side, when the worker drives a mesh of ranks. */
  readonly mesh: MeshControl | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly limits: EngineLimits,
    drivesMesh: boolean,
  ) {
    this.mesh = drivesMesh ? new MeshControl((message) => this.send(message), () => !this.closed && !this.exited) : undefined;
    worker.on('message', (message: WorkerMessage) => this.receive(message));
    worker.on('error', (error: Error) => this.failEverything(new TesseraError('TESSERA_ERR_INTERNAL', `the engine worker crashed: ${error.message}`)));
    worker.on('exit', () => {
      this.exited = true;
      if (!this.closed) this.failEverything(new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker exited; restart the server'));
    });
  }

  /** Starts the worker and waits until the model is loaded. */
  static async start(modelPath: string, options: LocalEngineHostOptions): Promise<LocalEngineHost> {
    const setup: WorkerSetup = { modelPath, tokenizerPath: options.tokenizerPath, core: options.core, backend: options.backend, threads: options.threads, mesh: options.mesh, trace: options.trace, nice: options.nice };
    const worker = new Worker(new URL('./engine-worker.js', import.meta.url), { workerData: setup });
    const limits = await new Promise<EngineLimits>((resolve, reject) => {
      const onMessage = (message: WorkerMessage): void => {
        if (message.type === 'ready') resolve(message);
        else if (message.type === 'load-failed') reject(new TesseraError(message.code as ErrorCode, message.message));
        if (message.type === 'ready' || message.type === 'load-failed') worker.off('message', onMessage);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
    return new LocalEngineHost(worker, limits, options.mesh !== undefined);
  }

  /** `kv`: the sequence's part in a KV transfer (disaggregated prefill and decode; src/serve/pd-replica.ts). */
  submit(request: SequenceRequest, listener: SequenceListener, kv?: KvRole): SequenceId {
    if (this.closed || this.exited) throw new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker is not running; restart the server');
    const id = newSequenceId();
    const sequenceId = this.nextNumber++;
    this.submitted.set(sequenceId, { id, listener });
    this.numbers.set(id, sequenceId);
    this.send({ type: 'add', sequenceId, request, ...(kv ? { kv } : {}) });
    return id;
  }

  /** A KV transfer's message to the engine; row buffers move to its thread (the caller lets go of them). */
  sendKv(message: KvToEngine): void {
    if (this.closed || this.exited) return;
    const buffers = message.type === 'rows' ? [...new Set([message.keys.buffer as ArrayBuffer, message.values.buffer as ArrayBuffer])] : [];
    this.worker.postMessage({ type: 'kv', message } satisfies HostMessage, buffers);
  }

  /** A KV link's shared-memory ring message to the engine; a ring's file handle moves to its thread. */
  sendRing(message: KvRingToEngine): void {
    if (this.closed || this.exited) return void ('handle' in message && message.handle.close().catch(() => undefined));
    this.worker.postMessage({ type: 'kv-ring', message } satisfies HostMessage, 'handle' in message ? [message.handle] : []);
  }

  onRing(listener: (message: KvRingFromEngine) => void): void {
    this.ringListeners.push(listener);
  }

  /** Called with every KV transfer message from the engine. */
  onKv(listener: (message: KvFromEngine) => void): void {
    this.kvListeners.push(listener);
  }

  /** The engine's own number for a sequence (KV transfer messages name sequences by it). */
  numberOf(id: SequenceId): number | undefined {
    return this.numbers.get(id);
  }

  cancel(id: SequenceId): void {
    const sequenceId = this.numbers.get(id);
    if (sequenceId === undefined) return;
    this.forget(sequenceId);
    this.send({ type: 'cancel', sequenceId });
  }

  get activeSequences(): number {
    return this.submitted.size;
  }

  stats(): StepStats {
    return this.latest;
  }

  onStats(listener: (stats: StepStats) => void): void {
    this.statsListeners.push(listener);
  }

  /** Not ready once the worker has exited, or when the engine says it cannot step (a mesh lost a rank). */
  health(): HostHealth {
    if (this.exited || this.closed) return { ready: false, status: 'engine stopped', code: 'TESSERA_ERR_INTERNAL' };
    return this.engineHealth;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A graceful stop lets the worker close what it opened (a mesh's rank processes).
    const exited = this.exited ? Promise.resolve() : new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.send({ type: 'stop' });
    const timer = setTimeout(() => void this.worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private send(message: HostMessage): void {
    this.worker.postMessage(message);
  }

  private receive(message: WorkerMessage): void {
    if (message.type === 'step') {
      for (const { sequenceId, ...output } of message.report.outputs) {
        const submitted = this.submitted.get(sequenceId);
        if (!submitted) continue;
        if (output.error) {
          this.fail(sequenceId, new TesseraError(output.error.code as ErrorCode, `the engine failed a step: ${output.error.message}`));
          continue;
        }
        if (output.finish) this.forget(sequenceId);
        submitted.listener.onOutput(output);
      }
      this.latest = message.report.stats;
      for (const listener of this.statsListeners) listener(message.report.stats);
    } else if (message.type === 'rejected') {
      this.fail(message.sequenceId, new TesseraError(message.code as ErrorCode, message.message));
    } else if (message.type === 'step-failed') {
      const error = new TesseraError(message.code as ErrorCode, `the engine failed a step: ${message.message}`);
      for (const sequenceId of message.sequenceIds) this.fail(sequenceId, error);
    } else if (message.type === 'health') {
      this.engineHealth = message.health;
    } else if (message.type === 'kv') {
      for (const listener of this.kvListeners) listener(message.message);
    } else if (message.type === 'kv-ring') {
      for (const listener of this.ringListeners) listener(message.message);
    } else if (message.type === 'admin-reply' || message.type === 'reshard') {
      this.mesh?.receive(message);
    }
  }

  private forget(sequenceId: number): Submitted | undefined {
    const submitted = this.submitted.get(sequenceId);
    this.submitted.delete(sequenceId);
    if (submitted) this.numbers.delete(submitted.id);
    return submitted;
  }

  private fail(sequenceId: number, error: TesseraError): void {
    this.forget(sequenceId)?.listener.onError(error);
  }

  private failEverything(error: TesseraError): void {
    this.mesh?.fail(error);
    for (const sequenceId of [...this.submitted.keys()]) this.fail(sequenceId, error);
  }
}
