/**
 * What one rank can use of its device: memory bandwidth and compute after the
 * efficiency derates, and its share of memory. A CPU rank streams at most what
 * its cores stream, and ranks on one host split the host's bandwidth.
 */
import { peakTflops, type HardwareSpec } from './hardware.js';
import type { Placement } from './layout.js';
import type { ComputeClass } from './precision.js';

export interface RankResources {
  /** Achievable read bandwidth, bytes per millisecond. */
  readonly bytesPerMs: number;
  /** Achievable FLOPs per millisecond for a compute class. */
  readonly flopsPerMs: (computeClass: ComputeClass) => number;
  /** Memory one rank may fill with weights and KV cache, bytes. */
  readonly usableBytes: number;
}

const GIB = 2 ** 30;

/**
 * `activeRanks`: ranks of this device streaming at the same time (default:
 * all of them). A pipeline with one micro-batch keeps one stage busy at a
 * time, so on a CPU host that stage's rank has the whole host's bandwidth.
 */
export function rankResources(hardware: HardwareSpec, placement: Placement, activeRanks = placement.ranksPerDevice): RankResources {
  const share = Math.max(1, Math.min(activeRanks, placement.ranksPerDevice));
  const { memory, compute } = hardware.efficiency;
  let bytesPerMs = (hardware.memoryBandwidthGBs / share) * memory * 1e6;
  let computeShare = 1 / share;
  if (hardware.kind === 'cpu') {
    const cores = hardware.cores ?? 1;
    const threads = placement.threadsPerRank ?? cores;
    const coreBandwidth = hardware.coreMemoryBandwidthGBs ?? hardware.memoryBandwidthGBs / cores;
    // A rank's kernels draw `memory` of what its cores (or the host, alone) stream;
    // ranks streaming at once split the host's triad, which the kernels' derate does not shrink further.
    const alone = Math.min(threads * coreBandwidth, hardware.memoryBandwidthGBs) * memory;
    bytesPerMs = Math.min(alone, share > 1 ? hardware.memoryBandwidthGBs / share : alone) * 1e6;
    computeShare = threads / cores;
  }
  const runtime = hardware.runtime;
  const usableGiB = (hardware.memoryGiB * runtime.memoryUtilization - runtime.reservedGiB) / placement.ranksPerDevice;
  return {
    bytesPerMs,
    flopsPerMs: (computeClass) => peakTflops(hardware, computeClass) * computeShare * compute * 1e9,
    usableBytes: Math.max(0, usableGiB * GIB),
  };
}
