/**
 * Device memory: the bytes held for weights, KV pools and activations, an
 * optional budget, and a pool of activation buffers by size class (powers of
 * two from 256 B), so a step reuses the previous step's buffers instead of
 * allocating. Running out is TESSERA_ERR_GPU_OUT_OF_MEMORY with the account.
 */
import { TesseraError } from '../../core/errors.js';
import type { GpuMemoryStats } from './gpu-protocol.js';

const MIB = 1024 * 1024;

export class GpuMemory {
  weightBytes = 0;
  poolBytes = 0;
  /** Activation buffers made (in use or free in the pool). */
  activationBytes = 0;
  private readonly free = new Map<number, GPUBuffer[]>();

  constructor(
    private readonly device: GPUDevice,
    /** 0: none of our own (the device still refuses what it cannot hold). */
    private readonly budget: number,
    private readonly maxBufferSize: number,
  ) {}

  stats(): GpuMemoryStats {
    return { weightBytes: this.weightBytes, poolBytes: this.poolBytes, activationBytes: this.activationBytes, budget: this.budget };
  }

  /** A storage buffer for a weight part or KV pool, counted under `kind`; mapped for writing when asked. */
  persistent(kind: 'weight' | 'pool', bytes: number, label: string, mapped: boolean): GPUBuffer {
    const size = align(Math.max(bytes, 16), 4);
    this.reserve(size, `${kind} ${label}`);
    const buffer = this.device.createBuffer({
      label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: mapped,
    });
    if (kind === 'weight') this.weightBytes += size;
    else this.poolBytes += size;
    return buffer;
  }

  release(kind: 'weight' | 'pool', buffer: GPUBuffer): void {
    if (kind === 'weight') this.weightBytes -= buffer.size;
    else this.poolBytes -= buffer.size;
    buffer.destroy();
  }

  /** An activation (or parameter arena) buffer of at least `bytes`. */
  take(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const reused = this.free.get(size)?.pop();
    if (reused) return reused;
    this.reserve(size, 'activation');
    this.activationBytes += size;
    return this.device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  }

  /** Back to the pool; safe once the work using it is submitted (the queue orders later uses after it). */
  give(buffer: GPUBuffer): void {
    const list = this.free.get(buffer.size);
    if (list) list.push(buffer);
    else this.free.set(buffer.size, [buffer]);
  }

  private reserve(bytes: number, what: string): void {
    if (bytes > this.maxBufferSize) {
      throw new TesseraError('TESSERA_ERR_GPU_OUT_OF_MEMORY', `${what} needs one buffer of ${mib(bytes)}, over this adapter's maxBufferSize of ${mib(this.maxBufferSize)}`);
    }
    const held = this.weightBytes + this.poolBytes + this.activationBytes;
    if (this.budget > 0 && held + bytes > this.budget) throw this.outOfMemory(what, bytes);
  }

  /** The coded error for a model that does not fit, with where the memory went. */
  outOfMemory(what: string, bytes: number): TesseraError {
    return new TesseraError(
      'TESSERA_ERR_GPU_OUT_OF_MEMORY',
      `the GPU cannot hold ${what} (${mib(bytes)} more; held: weights ${mib(this.weightBytes)}, KV pools ${mib(this.poolBytes)}, ` +
        `activations ${mib(this.activationBytes)}${this.budget > 0 ? `, budget ${mib(this.budget)}` : ''}); ` +
        'use a smaller dtype (q8_0, q4_k_m), a smaller --kv-cache-mib, or split the model over ranks (--pp/--tp with --rank-backend webgpu)',
    );
  }
}

export function align(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}

function sizeClass(bytes: number): number {
  let size = 256;
  while (size < bytes) size *= 2;
  return size;
}

function mib(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}
