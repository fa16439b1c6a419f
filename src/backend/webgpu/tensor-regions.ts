/**
 * Which host arrays stand for step tensors on the device. A region is a
 * Float32Array's memory (its buffer, offset and length), not the array
 * object, so two views of the same memory (the model's scratch buffers hand
 * out a fresh subarray per take) name the same tensor. A view that only
 * overlaps a tensor's region cannot be served from the device: that is a
 * host read of a value the step has not computed yet, and is refused.
 */
import { TesseraError } from '../../core/errors.js';

interface Region {
  start: number;
  end: number;
  id: number;
}

export class TensorRegions {
  private regions = new WeakMap<ArrayBufferLike, Region[]>();

  /** The tensor holding exactly this array's memory, if any. */
  find(array: Float32Array): number | undefined {
    const list = this.regions.get(array.buffer);
    if (!list) return undefined;
    const start = array.byteOffset;
    const end = start + array.byteLength;
    for (const region of list) {
      if (region.start === start && region.end === end) return region.id;
      if (region.start < end && start < region.end) {
        throw new TesseraError(
          'TESSERA_ERR_INTERNAL',
          'a host array overlaps a value the GPU step has not read back (flush it first); this is a bug in the caller of the backend',
        );
      }
    }
    return undefined;
  }

  /** This array's memory now stands for tensor `id` (replacing what overlapped it). */
  set(array: Float32Array, id: number): void {
    const start = array.byteOffset;
    const end = start + array.byteLength;
    const list = (this.regions.get(array.buffer) ?? []).filter((r) => r.end <= start || end <= r.start);
    list.push({ start, end, id });
    this.regions.set(array.buffer, list);
  }

  /** The array is host data again. */
  forget(array: Float32Array): void {
    const list = this.regions.get(array.buffer);
    if (!list) return;
    const start = array.byteOffset;
    const end = start + array.byteLength;
    this.regions.set(array.buffer, list.filter((r) => r.end <= start || end <= r.start));
  }

  clear(): void {
    this.regions = new WeakMap();
  }
}
