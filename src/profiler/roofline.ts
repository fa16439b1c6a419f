/**
 * A roofline verdict for each op and each phase: against the machine's
 * limits measured in the same run (memory bandwidth, the matmul kernels'
 * rate per format), how fast an op would run if only its bytes or only its
 * FLOPs counted, how close it came, and which resource bounds it — or none,
 * when it reaches a small fraction of both (then fixed costs dominate).
 */
import type { OpTotal } from './trace-attribution.js';

export interface MachineLimits {
  /** STREAM triad, GB/s (the best of the run). */
  readonly memoryBandwidthGBs: number;
  /** Batched matmul rates, GFLOP/s: 8-bit dot products (GGUF blocks) and f16/f32. */
  readonly int8Gflops: number;
  readonly f16Gflops: number;
}

export type Verdict = 'memory-bound' | 'compute-bound' | 'overhead-bound';

export interface OpRoofline {
  readonly key: string;
  readonly category: string;
  readonly calls: number;
  readonly ms: number;
  readonly achievedGBs: number;
  readonly achievedGflops: number;
  /** FLOPs per byte read. */
  readonly intensity: number;
  /** Which limit would bound the op if it ran at the machine's limits. */
  readonly limit: 'memory' | 'compute';
  /** Ideal time over measured time (1: at the limit). */
  readonly fraction: number;
  readonly verdict: Verdict;
}

/** Below this fraction of its limit an op is bound by fixed costs (launch, threads, JavaScript), not by a resource. */
export const OVERHEAD_FRACTION = 0.25;

/** GGUF blocks multiply with 8-bit dot products; float weights at the float rate. */
export function computeRate(limits: MachineLimits, dtype: string | undefined): number {
  return dtype !== undefined && /q\d|q\d_k/.test(dtype) ? limits.int8Gflops : limits.f16Gflops;
}

export function opRoofline(op: OpTotal, limits: MachineLimits): OpRoofline {
  const seconds = op.ms / 1000;
  const memorySeconds = op.bytes / (limits.memoryBandwidthGBs * 1e9);
  const computeSeconds = op.flops / (computeRate(limits, op.dtype) * 1e9);
  const limit = computeSeconds > memorySeconds ? 'compute' : 'memory';
  const fraction = seconds > 0 ? Math.max(memorySeconds, computeSeconds) / seconds : 0;
  return {
    key: op.key,
    category: op.category,
    calls: op.calls,
    ms: op.ms,
    achievedGBs: seconds > 0 ? op.bytes / seconds / 1e9 : 0,
    achievedGflops: seconds > 0 ? op.flops / seconds / 1e9 : 0,
    intensity: op.bytes > 0 ? op.flops / op.bytes : Infinity,
    limit,
    fraction,
    verdict: fraction < OVERHEAD_FRACTION ? 'overhead-bound' : limit === 'memory' ? 'memory-bound' : 'compute-bound',
  };
}
