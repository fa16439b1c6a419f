/**
 * Paged KV storage: per layer, one pool of fixed-size blocks for keys and one
 * for values; a sequence owns a block table naming its blocks in order.
 */
import { createKvPool, type KvPool } from '../backend/backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { DEFAULT_KV_DTYPE, type KvDtype } from '../core/kv-dtype.js';
import type { SequenceKv } from '../model/batch.js';

export const DEFAULT_BLOCK_SIZE = 16;

export class KvCache {
  /** Per layer; each [numBlocks, blockSize, numKvHeads, headDim] of `dtype`. */
  readonly keys: KvPool[] = [];
  readonly values: KvPool[] = [];
  private readonly freeBlocks: number[] = [];

  constructor(
    config: ModelConfig,
    readonly numBlocks: number,
    readonly blockSize = DEFAULT_BLOCK_SIZE,
    readonly dtype: KvDtype = DEFAULT_KV_DTYPE,
  ) {
    for (let layer = 0; layer < config.numLayers; layer++) {
      this.keys.push(createKvPool(dtype, numBlocks, blockSize, config.numKvHeads, config.headDim));
      this.values.push(createKvPool(dtype, numBlocks, blockSize, config.numKvHeads, config.headDim));
    }
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
