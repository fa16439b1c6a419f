/**
 * Memory per device: the weights of each rank's stage, and how many KV-cache
 * tokens fit in what is left (the smallest stage's room decides, since every
 * sequence has KV on every stage).
 */
import { kvBytesPerToken } from './kv-cache.js';
import type { Replica } from './replica.js';
import { stageWeightBytes } from './rank-weights.js';

const GIB = 2 ** 30;

export interface MemoryUse {
  /** Weights one rank holds on the heaviest stage, bytes. */
  readonly weightBytesPerRank: number;
  /** KV bytes one token takes on the heaviest stage's rank. */
  readonly kvBytesPerTokenPerRank: number;
  /** Tokens of KV cache one replica holds (every stage has room for them). */
  readonly kvTokenCapacity: number;
  /** Weights plus a full KV cache, per device, GiB. */
  readonly memoryPerDeviceGiB: number;
  /** Memory a rank may fill, bytes. */
  readonly usableBytesPerRank: number;
}

/** `kvCacheGiB` caps the KV pool per rank (Tessera's --kv-cache-mib); absent: all the room left. */
export function memoryUse(replica: Replica, kvCacheGiB?: number): MemoryUse {
  const usable = replica.resources.usableBytes;
  let weightMax = 0;
  let kvMax = 0;
  let capacity = Infinity;
  for (const stage of replica.stages) {
    const weights = stageWeightBytes(replica.shape, stage, replica.weights, replica.layout);
    const perToken = kvBytesPerToken(replica.shape, stage, replica.kv, replica.layout.tp);
    const room = Math.min(Math.max(0, usable - weights), kvCacheGiB === undefined ? Infinity : kvCacheGiB * GIB);
    weightMax = Math.max(weightMax, weights);
    kvMax = Math.max(kvMax, perToken);
    capacity = Math.min(capacity, room / perToken);
  }
  const kvBytes = Number.isFinite(capacity) ? capacity * kvMax : 0;
  const perDevice = (weightMax + kvBytes) * replica.placement.ranksPerDevice;
  return {
    weightBytesPerRank: weightMax,
    kvBytesPerTokenPerRank: kvMax,
    kvTokenCapacity: Math.floor(capacity),
    memoryPerDeviceGiB: perDevice / GIB,
    usableBytesPerRank: usable,
  };
}
