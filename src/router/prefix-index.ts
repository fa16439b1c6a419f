/**
 * The router's guess at what each replica's prefix cache holds. A prompt is
 * named block by block, as a replica's block manager names it (the chained
 * hash of every full block of `blockSize` tokens), and the router records
 * the blocks of every sequence it sends, at the moment it sends it, so the
 * next request with the same system prompt finds them before the replica
 * has even computed them. Bounded: the least recently used blocks are
 * forgotten first, as a replica reuses its oldest free blocks first.
 */
import { blockHash, ROOT_HASH } from '../engine/block-manager.js';
import type { ReplicaId } from './replica-state.js';

/** The chained hashes of the full blocks of `tokens`. */
export function prefixHashes(tokens: readonly number[], blockSize: number): string[] {
  const hashes: string[] = [];
  let parent = ROOT_HASH;
  for (let end = blockSize; end <= tokens.length; end += blockSize) {
    parent = blockHash(parent, tokens.slice(end - blockSize, end));
    hashes.push(parent);
  }
  return hashes;
}

export class PrefixIndex {
  /** Block hash → replicas believed to hold it. Map order is recency: oldest first. */
  private readonly blocks = new Map<string, Set<ReplicaId>>();

  constructor(private readonly capacity: number) {}

  get size(): number {
    return this.blocks.size;
  }

  /** Leading blocks of `hashes` that `replica` is believed to hold. */
  matchedBlocks(replica: ReplicaId, hashes: readonly string[]): number {
    let matched = 0;
    while (matched < hashes.length && this.blocks.get(hashes[matched])?.has(replica)) matched++;
    return matched;
  }

  /** The sequence with these blocks went to `replica`. */
  record(replica: ReplicaId, hashes: readonly string[]): void {
    for (const hash of hashes) {
      const holders = this.blocks.get(hash) ?? new Set<ReplicaId>();
      this.blocks.delete(hash);
      holders.add(replica);
      this.blocks.set(hash, holders);
    }
    for (const oldest of this.blocks.keys()) {
      if (this.blocks.size <= this.capacity) break;
      this.blocks.delete(oldest);
    }
  }

  /** The replica lost its cache (it died or restarted). */
  forget(replica: ReplicaId): void {
    for (const [hash, holders] of this.blocks) {
      holders.delete(replica);
      if (holders.size === 0) this.blocks.delete(hash);
    }
  }
}
