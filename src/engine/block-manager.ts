/**
 * Reference-counted KV blocks with a prefix cache. A full block is named by
 * the hash of every token up to its end (its parent's hash plus its own
 * tokens), so two sequences that share a prefix share its blocks. A block
 * nobody holds stays in the cache, with its hash, until it is reused for
 * other tokens; free blocks are reused oldest-released first, and a
 * sequence's tail blocks are released before its head, so the longest
 * shared prefixes live longest.
 */
import { createHash } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import { DEFAULT_KV_DTYPE, kvDtypeBytes, type KvDtype } from '../core/kv-dtype.js';
import type { SequenceKv } from '../model/batch.js';
import { KvCache } from './kv-cache.js';

export const ROOT_HASH = '';

/** Hash of a full block: its parent's hash and its tokens. */
export function blockHash(parent: string, tokens: readonly number[]): string {
  return createHash('sha256').update(parent).update(Int32Array.from(tokens)).digest('base64');
}

/** Bytes of one block of keys and values over all layers: 4 bytes an element for f32, 2 for f16. */
export function blockBytes(config: ModelConfig, blockSize: number, dtype: KvDtype = DEFAULT_KV_DTYPE): number {
  return 2 * config.numLayers * blockSize * config.numKvHeads * config.headDim * kvDtypeBytes(dtype);
}

export interface PrefixMatch {
  blocks: number[];
  hashes: string[];
}

export class BlockManager {
  readonly cache: KvCache;
  private readonly refCounts: Int32Array;
  private readonly hashes: (string | undefined)[];
  private readonly byHash = new Map<string, number>();
  /** Blocks nobody holds, oldest first (insertion order of a Map). */
  private readonly free = new Map<number, true>();
  queriedTokens = 0;
  hitTokens = 0;

  constructor(
    config: ModelConfig,
    numBlocks: number,
    readonly blockSize: number,
    readonly prefixCaching = true,
    dtype: KvDtype = DEFAULT_KV_DTYPE,
    /** Layers that get KV pools (KvCache's `layers`; none when a mesh's ranks hold the KV). */
    poolLayers?: readonly [number, number],
  ) {
    if (numBlocks < 1) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'the KV cache must hold at least one block; raise --kv-cache-mib');
    this.cache = new KvCache(config, numBlocks, blockSize, dtype, poolLayers);
    this.refCounts = new Int32Array(numBlocks);
    this.hashes = new Array<string | undefined>(numBlocks).fill(undefined);
    for (let block = 0; block < numBlocks; block++) this.free.set(block, true);
  }

  get numBlocks(): number {
    return this.cache.numBlocks;
  }

  get freeCount(): number {
    return this.free.size;
  }

  get usedCount(): number {
    return this.numBlocks - this.free.size;
  }

  /** The KV view the model reads for a list of blocks. */
  kvOf(blocks: readonly number[]): SequenceKv {
    return { keys: this.cache.keys, values: this.cache.values, blockTable: Int32Array.from(blocks) };
  }

  /**
   * Cached full blocks that start `tokens`, covering at most `maxTokens`
   * tokens. Takes no references; `acquire` does.
   */
  matchPrefix(tokens: readonly number[], maxTokens: number): PrefixMatch {
    const match: PrefixMatch = { blocks: [], hashes: [] };
    let parent = ROOT_HASH;
    for (let end = this.blockSize; end <= maxTokens; end += this.blockSize) {
      const hash = blockHash(parent, tokens.slice(end - this.blockSize, end));
      const block = this.byHash.get(hash);
      if (block === undefined) break;
      match.blocks.push(block);
      match.hashes.push(hash);
      parent = hash;
    }
    return match;
  }

  /** Counts a lookup of `queried` tokens of which `hit` came from the cache (for the hit rate). */
  recordLookup(queried: number, hit: number): void {
    this.queriedTokens += queried;
    this.hitTokens += hit;
  }

  acquire(block: number): void {
    if (this.refCounts[block] === 0) this.free.delete(block);
    this.refCounts[block]++;
  }

  /** A fresh block for new tokens, or undefined when none is free. */
  allocate(): number | undefined {
    const next = this.free.keys().next();
    if (next.done) return undefined;
    const block = next.value;
    this.free.delete(block);
    const hash = this.hashes[block];
    if (hash !== undefined) {
      if (this.byHash.get(hash) === block) this.byHash.delete(hash);
      this.hashes[block] = undefined;
    }
    this.refCounts[block] = 1;
    return block;
  }

  /** Drops one reference to each block, tail first. */
  release(blocks: readonly number[]): void {
    for (let i = blocks.length - 1; i >= 0; i--) {
      const block = blocks[i];
      if (this.refCounts[block] <= 0) throw new TesseraError('TESSERA_ERR_INTERNAL', `KV block ${block} released more often than acquired`);
      this.refCounts[block]--;
      if (this.refCounts[block] === 0) this.free.set(block, true);
    }
  }

  /** Names a block that has just become full, so later sequences can share it. */
  register(block: number, hash: string): void {
    if (!this.prefixCaching) return;
    if (this.hashes[block] !== undefined) return;
    if (this.byHash.has(hash)) return; // another block already holds the same tokens
    this.hashes[block] = hash;
    this.byHash.set(hash, block);
  }

  /** Unnames every block: their contents are gone (a mesh re-sharded), so no later sequence may share them. */
  forgetPrefixes(): void {
    this.byHash.clear();
    this.hashes.fill(undefined);
  }

  /** The hit rate of prefix lookups so far, in [0, 1]. */
  get hitRate(): number {
    return this.queriedTokens === 0 ? 0 : this.hitTokens / this.queriedTokens;
  }
}
