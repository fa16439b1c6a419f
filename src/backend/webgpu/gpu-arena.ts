/**
 * One upload buffer per request for every dispatch's uniform parameters and
 * small index arrays (positions, block tables, ids): ops write their pieces at
 * aligned offsets into one growing host buffer, which goes to the device in
 * one writeBuffer, and each binding points into it.
 */
import { align } from './gpu-memory.js';

export interface ArenaSlice {
  offset: number;
  size: number;
}

export class GpuArena {
  private bytes = new ArrayBuffer(16 * 1024);
  private u32 = new Uint32Array(this.bytes);
  private f32 = new Float32Array(this.bytes);
  private i32 = new Int32Array(this.bytes);
  private length = 0;

  constructor(private readonly alignment: number) {}

  /** A uniform struct of 4-byte fields: u32 for integers, f32 at the indices `floats` names. */
  params(values: readonly number[], floats: readonly number[] = []): ArenaSlice {
    const size = align(values.length * 4, 16);
    const offset = this.reserve(size);
    const word = offset / 4;
    for (let i = 0; i < values.length; i++) this.u32[word + i] = values[i] >>> 0;
    for (const i of floats) this.f32[word + i] = values[i];
    return { offset, size };
  }

  /** An i32 array for a storage binding (at least 16 bytes). */
  ints(values: Int32Array): ArenaSlice {
    const size = Math.max(16, align(values.length * 4, 16));
    const offset = this.reserve(size);
    this.i32.set(values, offset / 4);
    return { offset, size };
  }

  get size(): number {
    return Math.max(this.length, 256);
  }

  /** Writes the pieces into `buffer` (at least `size` bytes). */
  upload(queue: GPUQueue, buffer: GPUBuffer): void {
    if (this.length > 0) queue.writeBuffer(buffer, 0, this.bytes, 0, this.length);
  }

  /** `size` zeroed bytes at the next aligned offset. */
  private reserve(size: number): number {
    const offset = align(this.length, this.alignment);
    const end = offset + size;
    if (end > this.bytes.byteLength) {
      const grown = new ArrayBuffer(Math.max(end, this.bytes.byteLength * 2));
      new Uint8Array(grown).set(new Uint8Array(this.bytes, 0, this.length));
      this.bytes = grown;
      this.u32 = new Uint32Array(grown);
      this.f32 = new Float32Array(grown);
      this.i32 = new Int32Array(grown);
    }
    this.u32.fill(0, offset / 4, end / 4);
    this.length = end;
    return offset;
  }
}
