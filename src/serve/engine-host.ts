/**
 * The API process's handle on an engine core running in a worker thread:
 * submit sequences, receive their outputs as they are produced, cancel them.
 * Everything crossing the boundary is a structured-clone message
 * (engine-messages.ts), so a core in another process or machine can later
 * stand behind the same methods.
 */
import { Worker } from 'node:worker_threads';
import type { BackendChoice } from '../backend/native/select-backend.js';
import { TesseraError, type ErrorCode } from '../core/errors.js';
import type { EngineCoreOptions, StepStats } from '../engine/engine-core.js';
import type { AdminAction, HostMessage, WorkerMessage, WorkerSetup } from './engine-messages.js';
import type { ClusterView } from '../cluster/cluster-view.js';
import type { ReshardRecord } from '../cluster/reshard-log.js';
import type { SequenceOutput, SequenceRequest } from '../engine/sequence.js';
import type { KvDtype } from '../core/kv-dtype.js';

export interface SequenceListener {
  onOutput(output: SequenceOutput): void;
  onError(error: TesseraError): void;
}

export interface EngineHostOptions {
  tokenizerPath?: string;
  core: EngineCoreOptions;
  backend?: BackendChoice;
  threads?: number;
  mesh?: WorkerSetup['mesh'];
  trace?: string;
}

export interface EngineLimits {
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  /** Element type of the KV cache the blocks are counted in. */
  kvCacheDtype: KvDtype;
  loadMs: number;
  /** The backend the worker computes with. */
  backend: string;
}

export class EngineHost {
  private readonly listeners = new Map<number, SequenceListener>();
  private readonly statsListeners: ((stats: StepStats) => void)[] = [];
  private readonly reshardListeners: ((record: ReshardRecord) => void)[] = [];
  private readonly adminCalls = new Map<number, { resolve: (view: ClusterView) => void; reject: (error: TesseraError) => void }>();
  private nextAdminCall = 1;
  private nextId = 1;
  private closed = false;
  private exited = false;

  private constructor(
    private readonly worker: Worker,
    readonly limits: EngineLimits,
  ) {
    worker.on('message', (message: WorkerMessage) => this.receive(message));
    worker.on('error', (error: Error) => this.failEverything(new TesseraError('TESSERA_ERR_INTERNAL', `the engine worker crashed: ${error.message}`)));
    worker.on('exit', () => {
      this.exited = true;
      if (!this.closed) this.failEverything(new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker exited; restart the server'));
    });
  }

  /** Starts the worker and waits until the model is loaded. */
  static async start(modelPath: string, options: EngineHostOptions): Promise<EngineHost> {
    const setup: WorkerSetup = { modelPath, tokenizerPath: options.tokenizerPath, core: options.core, backend: options.backend, threads: options.threads, mesh: options.mesh, trace: options.trace };
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
    return new EngineHost(worker, limits);
  }

  /** Queues a sequence; returns its id (for cancel). */
  submit(request: SequenceRequest, listener: SequenceListener): number {
    if (this.closed || this.exited) throw new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker is not running; restart the server');
    const sequenceId = this.nextId++;
    this.listeners.set(sequenceId, listener);
    this.send({ type: 'add', sequenceId, request });
    return sequenceId;
  }

  /** Stops a sequence and frees its KV blocks; no more outputs reach its listener. */
  cancel(sequenceId: number): void {
    if (!this.listeners.delete(sequenceId)) return;
    this.send({ type: 'cancel', sequenceId });
  }

  onStats(listener: (stats: StepStats) => void): void {
    this.statsListeners.push(listener);
  }

  /** Each mesh re-shard's record as it fills in. */
  onReshard(listener: (record: ReshardRecord) => void): void {
    this.reshardListeners.push(listener);
  }

  /** The mesh as GET /admin/cluster shows it, after `action` (a re-shard resolves once the new plan serves). */
  admin(action: AdminAction): Promise<ClusterView> {
    if (this.closed || this.exited) return Promise.reject(new TesseraError('TESSERA_ERR_INTERNAL', 'the engine worker is not running; restart the server'));
    const requestId = this.nextAdminCall++;
    return new Promise((resolve, reject) => {
      this.adminCalls.set(requestId, { resolve, reject });
      this.send({ type: 'admin', requestId, action });
    });
  }

  /** False once the worker has exited (crashed or closed). */
  get alive(): boolean {
    return !this.exited && !this.closed;
  }

  get activeSequences(): number {
    return this.listeners.size;
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
      for (const output of message.report.outputs) {
        const listener = this.listeners.get(output.sequenceId);
        if (!listener) continue;
        if (output.error) {
          this.fail(output.sequenceId, new TesseraError(output.error.code as ErrorCode, `the engine failed a step: ${output.error.message}`));
          continue;
        }
        if (output.finish) this.listeners.delete(output.sequenceId);
        listener.onOutput(output);
      }
      for (const listener of this.statsListeners) listener(message.report.stats);
    } else if (message.type === 'rejected') {
      this.fail(message.sequenceId, new TesseraError(message.code as ErrorCode, message.message));
    } else if (message.type === 'admin-reply') {
      const call = this.adminCalls.get(message.requestId);
      this.adminCalls.delete(message.requestId);
      if (message.error) call?.reject(new TesseraError(message.error.code as ErrorCode, message.error.message));
      else if (message.view) call?.resolve(message.view);
    } else if (message.type === 'reshard') {
      for (const listener of this.reshardListeners) listener(message.record);
    } else if (message.type === 'step-failed') {
      const error = new TesseraError(message.code as ErrorCode, `the engine failed a step: ${message.message}`);
      for (const sequenceId of message.sequenceIds) this.fail(sequenceId, error);
    }
  }

  private fail(sequenceId: number, error: TesseraError): void {
    const listener = this.listeners.get(sequenceId);
    this.listeners.delete(sequenceId);
    listener?.onError(error);
  }

  private failEverything(error: TesseraError): void {
    for (const sequenceId of [...this.listeners.keys()]) this.fail(sequenceId, error);
  }
}
