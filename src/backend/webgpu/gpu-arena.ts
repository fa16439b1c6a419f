/**
 * One upload buffer per run for every dispatch's uniform parameters and small
 * index arrays (positions, block tables, ids): ops add their pieces at
 * aligned offsets, then the arena is written to the device once and each
 * binding points into it. So a step makes one writeBuffer for all of them.
 */
import { align } from './gpu-memory.js';

export interface ArenaSlice {
  offset: number;
  size: number;
}

export class GpuArena {
  private readonly pieces: { offset: number; bytes: Uint8Array }[] = [];
  private length = 0;

  constructor(private readonly alignment: number) {}

  /** A uniform struct of 4-byte fields: u32 for integers, f32 where `floats` says. */
  params(values: readonly number[], floats: readonly number[] = []): ArenaSlice {
    const words = new ArrayBuffer(align(values.length * 4, 16));
    const u32 = new Uint32Array(words);
    const f32 = new Float32Array(words);
    values.forEach((v, i) => {
      if (floats.includes(i)) f32[i] = v;
      else u32[i] = v >>> 0;
    });
    return this.add(new Uint8Array(words));
  }

  /** An i32 array for a storage binding (at least 16 bytes). */
  ints(values: Int32Array): ArenaSlice {
    const padded = new Int32Array(Math.max(4, align(values.length, 4)));
    padded.set(values);
    return this.add(new Uint8Array(padded.buffer));
  }

  get size(): number {
    return Math.max(this.length, 256);
  }

  /** Writes every piece into `buffer` (at least `size` bytes). */
  upload(queue: GPUQueue, buffer: GPUBuffer): void {
    if (this.length === 0) return;
    const all = new Uint8Array(this.length);
    for (const piece of this.pieces) all.set(piece.bytes, piece.offset);
    queue.writeBuffer(buffer, 0, all);
  }

  private add(bytes: Uint8Array): ArenaSlice {
    const offset = align(this.length, this.alignment);
    this.pieces.push({ offset, bytes });
    this.length = offset + bytes.byteLength;
    return { offset, size: bytes.byteLength };
  }
}
