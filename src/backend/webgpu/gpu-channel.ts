/**
 * The caller's end of the GPU thread: `call` sends a request and blocks this
 * thread (Atomics.wait) until the reply is there, so Backend ops stay
 * synchronous. Blocking is what CPU backends do too while they compute; the
 * serving engine already runs in its own worker thread.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { TesseraError, type ErrorCode } from '../../core/errors.js';
import type { GpuReply, GpuRequest } from './gpu-protocol.js';

/** A reply that takes longer than this means the GPU thread is gone or hung. */
const REPLY_TIMEOUT_MS = 15 * 60 * 1000;

type OkReply = Extract<GpuReply, { ok: true }>;

export class GpuChannel {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  private exited: string | undefined;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(new URL('./gpu-thread.js', import.meta.url), {
      workerData: { port: port2, flag: this.flag },
      transferList: [port2],
    });
    // Nothing else keeps the process alive for it; the worker dies with the process.
    this.worker.unref();
    this.worker.on('error', (error: Error) => (this.exited = error.message));
    this.worker.on('exit', (code) => (this.exited ??= `exit code ${code}`));
  }

  call(request: GpuRequest, transfer: ArrayBuffer[] = []): OkReply {
    if (this.exited) throw new TesseraError('TESSERA_ERR_INTERNAL', `the GPU thread has stopped (${this.exited})`);
    Atomics.store(this.flag, 0, 0);
    this.port.postMessage(request, transfer);
    const deadline = Date.now() + REPLY_TIMEOUT_MS;
    while (Atomics.wait(this.flag, 0, 0, 1000) === 'timed-out') {
      if (Date.now() > deadline) throw new TesseraError('TESSERA_ERR_INTERNAL', `the GPU thread did not answer a ${request.kind} request in ${REPLY_TIMEOUT_MS / 60000} minutes`);
    }
    const received = receiveMessageOnPort(this.port);
    if (!received) throw new TesseraError('TESSERA_ERR_INTERNAL', 'the GPU thread raised its flag without a reply');
    const reply = received.message as GpuReply;
    if (!reply.ok) throw new TesseraError(reply.code as ErrorCode, reply.message);
    return reply;
  }

  /** Sends a request that gets no reply (a partial run). */
  post(request: GpuRequest, transfer: ArrayBuffer[] = []): void {
    if (this.exited) throw new TesseraError('TESSERA_ERR_INTERNAL', `the GPU thread has stopped (${this.exited})`);
    this.port.postMessage(request, transfer);
  }

  close(): void {
    if (this.exited) return;
    try {
      this.call({ kind: 'close' });
    } catch {
      // Already gone.
    }
    void this.worker.terminate();
  }
}
