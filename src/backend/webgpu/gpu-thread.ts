/**
 * The GPU thread: a worker_thread that owns the WebGPU device (Dawn delivers
 * its callbacks on the owning thread's event loop, so the caller's thread,
 * which blocks while it waits, cannot own it). It answers each request on
 * its port and then raises the shared flag the caller waits on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { isTesseraError } from '../../core/errors.js';
import type { GpuReply, GpuRequest } from './gpu-protocol.js';
import { GpuRuntime } from './gpu-runtime.js';

const { port, flag } = workerData as { port: MessagePort; flag: Int32Array };
let runtime: GpuRuntime | undefined;
/** A partial request's failure, answered with the next whole request. */
let deferred: unknown;

async function answer(request: GpuRequest): Promise<GpuReply> {
  switch (request.kind) {
    case 'open':
      runtime = await GpuRuntime.open(request);
      return { ok: true, adapter: runtime.adapter };
    case 'loadWeight':
      await opened().loadWeight(request);
      return { ok: true };
    case 'run': {
      const { reads, pools, timings } = await opened().run(request);
      return { ok: true, reads, pools, timings };
    }
    case 'bandwidth':
      return { ok: true, bytesPerSecond: await opened().measureBandwidth(request.bytes, request.repeats) };
    case 'stats':
      return { ok: true, stats: opened().stats() };
    case 'close':
      setImmediate(() => process.exit(0));
      return { ok: true };
  }
}

function opened(): GpuRuntime {
  if (!runtime) throw new Error('the GPU thread got a request before open');
  return runtime;
}

// One request at a time, in order: the caller sends the next whole request only after this one's reply.
// Partial runs are encoded synchronously, so they finish before the next message is handled.
port.on('message', (request: GpuRequest) => {
  if (request.kind === 'run' && request.partial) {
    try {
      if (deferred === undefined) opened().encode(request);
    } catch (error) {
      deferred = error;
    }
    return;
  }
  const failed = deferred;
  deferred = undefined;
  if (failed !== undefined) runtime?.abandon();
  (failed === undefined ? answer(request) : Promise.reject(failed))
    .catch((error: unknown): GpuReply => ({
      ok: false,
      code: isTesseraError(error) ? error.code : 'TESSERA_ERR_INTERNAL',
      message: error instanceof Error ? error.message : String(error),
    }))
    .then((reply) => {
      const transfer = [...(reply.ok ? (reply.reads ?? []).map((r) => r.buffer as ArrayBuffer) : []), ...(reply.ok ? reply.pools ?? [] : [])];
      port.postMessage(reply, transfer);
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    });
});
parentPort?.postMessage('ready');
