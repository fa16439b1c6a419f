/**
 * Paged KV storage: per layer, one pool of fixed-size blocks for keys and one
 * for values; a sequence owns a block table naming its blocks in order.
 */
import { createKvPool, type KvPool } from '../backend/backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { DEFAULT_KV_DTYPE, type KvDtype } from '../core/kv-dtype.js';
import type { SequenceKv } from '../model/batch.js';
import { sliceBytes } from '../format/slice-bytes.js';

export const DEFAULT_BLOCK_SIZE = 16;

/** The block layout of each cache, by its `keys` array: what a mesh driver tells its ranks, pools or not. */
const layouts = new WeakMap<readonly KvPool[], { numBlocks: number; blockSize: number }>();

/** numBlocks and blockSize of the KvCache whose `keys` these are, or undefined for another pool list. */
export function kvLayoutOf(keys: readonly KvPool[]): { numBlocks: number; blockSize: number } | undefined {
  return layouts.get(keys);
}

export class KvCache {
  /**
   * Per layer, indexed by the model's layer number; each [numBlocks,
   * blockSize, numKvHeads, headDim] of `dtype`. Layers outside `layers` have
   * no pool: a pipeline stage holds its own layers only, and a mesh driver,
   * whose ranks hold the KV, holds none (it keeps only the block accounting).
   */
  readonly keys: KvPool[] = [];
  readonly values: KvPool[] = [];
  private readonly freeBlocks: number[] = [];

  constructor(
    config: ModelConfig,
    readonly numBlocks: number,
    readonly blockSize = DEFAULT_BLOCK_SIZE,
    readonly dtype: KvDtype = DEFAULT_KV_DTYPE,
    /** Half-open range of layers that get pools (default: all). */
    readonly layers: readonly [number, number] = [0, config.numLayers],
  ) {
    for (let layer = layers[0]; layer < layers[1]; layer++) {
      this.keys[layer] = touched(createKvPool(dtype, numBlocks, blockSize, config.numKvHeads, config.headDim, sliceBytes));
      this.values[layer] = touched(createKvPool(dtype, numBlocks, blockSize, config.numKvHeads, config.headDim, sliceBytes));
    }
    layouts.set(this.keys, { numBlocks, blockSize });
    for (let block = numBlocks - 1; block >= 0; block--) this.freeBlocks.push(block);
  }

  /** A cache big enough for one sequence of `tokens` tokens. */
  static forTokens(config: ModelConfig, tokens: number, blockSize = DEFAULT_BLOCK_SIZE, dtype: KvDtype = DEFAULT_KV_DTYPE): KvCache {
    return new KvCache(config, Math.ceil(tokens / blockSize), blockSize, dtype);
  }

  get freeBlockCount(): number {
    return this.freeBlocks.length;
  }

  /** Blocks for a sequence that will hold up to `tokens` tokens. */
  allocate(tokens: number): SequenceKv {
    const needed = Math.ceil(tokens / this.blockSize);
    if (needed > this.freeBlocks.length) {
      throw new TesseraError('TESSERA_ERR_CONTEXT_OVERFLOW', `the KV cache has ${this.freeBlocks.length} free blocks but ${needed} are needed; shorten the request`);
    }
    const blockTable = new Int32Array(needed);
    for (let i = 0; i < needed; i++) blockTable[i] = this.freeBlocks.pop() as number;
    return { keys: this.keys, values: this.values, blockTable };
  }

  release(sequence: SequenceKv): void {
    for (const block of sequence.blockTable) this.freeBlocks.push(block);
  }
}

/**
 * The pool with every page written once, here, when the cache is made. A
 * fresh array's pages are mapped on first write, and on a virtual machine
 * whose host backs guest memory lazily that first write ran at 0.36 GB/s
 * against 16 GB/s for a written page: left lazy, that cost lands on
 * whichever step (or KV transfer) first uses a block. Done now, the cache
 * costs its memory up front, as a GPU server's preallocated cache does.
 *
 * Pools of 4 MiB and more are on 2 MiB pages (sliceBytes, when the native
 * addon is built): attention reads blocks scattered over the whole pool, one
 * TLB entry per 2 MiB rather than per 4 KiB. And on this virtual machine
 * 4 KiB pages left unused for 15-40 s are slow again at their next use (a
 * 512 MiB copy into such pages ran at 6.1-6.7 GB/s against 15.5-16.1 when
 * hot, mlock or not, with no page fault in the guest), which is where a KV
 * transfer or a new sequence lands in a large pool; on huge pages the same
 * copy after 25 s idle ran at 14.1 GB/s.
 */
function touched(pool: KvPool): KvPool {
  pool.data.fill(0);
  return pool;
}
