/**
 * The worker thread that owns the model and runs the step loop, so compute
 * never blocks the API process's event loop (DESIGN §1). It loads the model,
 * then steps while there is work and sleeps while there is none; messages
 * (add, cancel) land between steps.
 */
import { setPriority } from 'node:os';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { createBackend } from '../backend/native/select-backend.js';
import type { Backend } from '../backend/backend.js';
import { isTesseraError, TesseraError, type ErrorCode } from '../core/errors.js';
import type { MeshCoordinator } from '../cluster/coordinator.js';
import type { ReshardRecord } from '../cluster/reshard-log.js';
import { openMeshEngine } from '../cluster/mesh-engine.js';
import type { TraceEvent } from '../core/trace-event.js';
import { Engine } from '../engine/engine.js';
import { openTracedEngine } from '../engine/traced-engine.js';
import type { ModelRunner } from '../engine/engine-core.js';
import type { KvTransfers } from '../engine/kv-transfers.js';
import { openKvCore } from './engine-worker-kv.js';
import { writeChromeTrace } from '../profiler/chrome-trace.js';
import type { AdminAction, HostMessage, WorkerMessage, WorkerSetup } from './engine-messages.js';
import type { HostHealth } from './engine-host.js';

const port = parentPort;
if (!port) throw new Error('engine-worker.js runs only as a worker thread');
const setup = workerData as WorkerSetup;

function send(message: WorkerMessage, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function errorFields(error: unknown): { code: string; message: string } {
  if (isTesseraError(error)) return { code: error.code, message: error.message };
  return { code: 'TESSERA_ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

/** This thread's CPU priority, before the backend starts its threads (they inherit it). */
function lowerPriority(nice: number | undefined): void {
  if (!nice) return;
  try {
    setPriority(nice); // pid 0: the calling thread on Linux
  } catch (error) {
    process.stderr.write(`tessera: could not set the engine thread's nice value to ${nice}: ${error instanceof Error ? error.message : String(error)}\n`);
  }
}

async function main(): Promise<void> {
  lowerPriority(setup.nice);
  const model = await openModel();
  const { core, kv, rings } = openKvCore(model.engine, model.runner, model.backend, setup.core, send);
  let wake: (() => void) | undefined;
  let stopping = false;
  // Messages wait in an inbox and apply between steps, never while a step's batch is in flight.
  const inbox: HostMessage[] = [];
  const apply = (message: HostMessage): void => {
    if (message.type === 'add') {
      try {
        if (message.kv) kvOf(kv).add(message.sequenceId, message.request, message.kv);
        else core.add(message.sequenceId, message.request);
      } catch (error) {
        send({ type: 'rejected', sequenceId: message.sequenceId, ...errorFields(error) });
      }
    } else if (message.type === 'cancel') {
      core.cancel(message.sequenceId);
      kv?.cancel(message.sequenceId);
    } else if (message.type === 'kv') kv?.apply(message.message);
    else if (message.type === 'kv-ring') rings?.apply(message.message);
    else stopping = true;
  };
  const receive = (message: HostMessage): void => {
    // Admin calls do not wait for a step: a re-shard runs beside the step loop, which waits for it.
    if (message.type === 'admin') return void answerAdmin(model.coordinator, message.requestId, message.action);
    inbox.push(message);
    wake?.();
  };
  port!.on('message', receive);
  /** Messages posted during the step, taken now rather than when this thread's event loop next turns. */
  const receiveWaiting = (): void => {
    for (let waiting = receiveMessageOnPort(port!); waiting; waiting = receiveMessageOnPort(port!)) receive(waiting.message as HostMessage);
  };
  watchHealth(model);
  send({ type: 'ready', maxModelLen: core.maxModelLen, numBlocks: core.blocks.numBlocks, blockSize: core.blocks.blockSize, kvCacheDtype: core.blocks.cache.dtype, loadMs: model.engine.loadMs, backend: model.backendName, kvTransfer: kv !== undefined });
  for (;;) {
    for (const message of inbox.splice(0)) apply(message);
    if (stopping) break;
    if (!core.hasWork) {
      if (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      continue;
    }
    try {
      const report = await core.step();
      // KV rows that arrived during the step are copied in before its tokens go out: the host's burst of
      // streaming (and the router's and clients' behind it) would otherwise take the cores in the middle
      // of those copies. A step that received a prompt chunk's rows sends its tokens a few ms later.
      receiveWaiting();
      for (const message of inbox.splice(0)) apply(message);
      send({ type: 'step', report });
      kv?.afterStep(report.outputs);
    } catch (error) {
      // A failed step must not take the server down: fail the sequences it held, keep serving.
      send({ type: 'step-failed', sequenceIds: core.failAll(), ...errorFields(error) });
    }
    // Let messages (new requests, cancellations) in between steps.
    await new Promise((resolve) => setImmediate(resolve));
  }
  try {
    await model.close();
  } catch (error) {
    // Shutting down anyway: say what was lost (a trace that could not be written, a mesh that did not stop).
    process.stderr.write(`tessera: while stopping the engine: ${(error as Error).message}\n`);
  }
  process.exit(0);
}

/** The engine's KV transfers, or the refusal of a KV role by an engine that cannot move its KV. */
function kvOf(kv: KvTransfers | undefined): KvTransfers {
  if (!kv) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'this replica cannot move KV to or from other replicas (its KV is on a device); route it colocated');
  return kv;
}

interface OpenedModel {
  engine: Engine;
  runner: ModelRunner;
  /** The backend of a model run in this thread (undefined on a mesh). */
  backend?: Backend;
  backendName: string;
  /** Why the model cannot run now (a mesh re-sharding after a lost rank, or left with no layout); undefined while it can. */
  lost(): Error | undefined;
  /** The mesh's coordinator (--tp/--pp/--listen), for the admin routes. */
  coordinator?: MeshCoordinator;
  close(): Promise<void>;
}

async function answerAdmin(coordinator: MeshCoordinator | undefined, requestId: number, action: AdminAction): Promise<void> {
  try {
    if (!coordinator) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'this server runs no mesh; start it with --tp/--pp or --listen to use /admin routes');
    const view = action.kind === 'describe' ? coordinator.describe() : await coordinator.reshard(action.shape);
    send({ type: 'admin-reply', requestId, view });
  } catch (error) {
    send({ type: 'admin-reply', requestId, error: errorFields(error) });
  }
}

/** How often a mesh's liveness is looked at while idle (a lost rank must show on /ready without a request). */
const HEALTH_POLL_MS = 100;

/** Tells the host whenever the model's health changes. */
function watchHealth(model: OpenedModel): void {
  let last = 'ready';
  const check = (): void => {
    const lost = model.lost();
    const health: HostHealth = lost ? { ready: false, status: `mesh failed: ${lost.message}`, code: (isTesseraError(lost) ? lost.code : 'TESSERA_ERR_RANK_LOST') as ErrorCode } : { ready: true, status: 'ready' };
    if (health.status === last) return;
    last = health.status;
    send({ type: 'health', health });
  };
  setInterval(check, HEALTH_POLL_MS).unref();
}

async function openModel(): Promise<OpenedModel> {
  if (setup.mesh) {
    const log = (line: string): void => void process.stderr.write(`tessera: ${line}\n`);
    // The ranks keep the KV, in the core's dtype, in pools that mirror the core's blocks (so prefix caching works as here).
    const onReshard = (record: ReshardRecord): void => send({ type: 'reshard', record });
    const { engine, coordinator, coreRunner } = await openMeshEngine(setup.modelPath, { ...setup.mesh, tokenizerPath: setup.tokenizerPath, kvCacheDtype: setup.core.kvCacheDtype, log, onReshard });
    const name = `mesh tp ${setup.mesh.tp} × pp ${setup.mesh.pp}, ${setup.mesh.backend ?? 'reference'} ranks`;
    // After a re-shard the runner says the KV is lost and the core recomputes its sequences.
    return { engine, runner: coreRunner, backendName: name, coordinator, lost: () => coordinator.lost, close: () => coordinator.close() };
  }
  const backend = createBackend(setup.backend ?? 'auto', { threads: setup.threads });
  const tracePath = setup.trace;
  if (tracePath !== undefined) {
    const events: TraceEvent[] = [];
    const engine = await openTracedEngine(setup.modelPath, { backend, tokenizerPath: setup.tokenizerPath, kvCacheDtype: setup.core.kvCacheDtype }, events);
    return { engine, runner: engine.transformer, backend, backendName: backend.name, lost: () => undefined, close: async () => writeChromeTrace(tracePath, events, 1) };
  }
  const engine = await Engine.open(setup.modelPath, { tokenizerPath: setup.tokenizerPath, backend, kvCacheDtype: setup.core.kvCacheDtype });
  return { engine, runner: engine.transformer, backend, backendName: backend.name, lost: () => undefined, close: async () => undefined };
}

main().catch((error) => send({ type: 'load-failed', ...errorFields(error) }));
