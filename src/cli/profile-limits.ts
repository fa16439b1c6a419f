/**
 * This machine's limits, measured in the profile's own run: the STREAM triad
 * (the native addon's, on the run's threads) and the batched matmul rate of
 * the native kernels for 8-bit blocks and for f16 weights (64 tokens against
 * a 5632 × 2048 matrix, TinyLlama's FFN shape; the fastest of repeated runs).
 */
import { createBackend } from '../backend/native/select-backend.js';
import { NativeBackend } from '../backend/native/native-backend.js';
import type { Backend } from '../backend/backend.js';
import { f32ToF16 } from '../core/half.js';
import type { DType } from '../core/dtype.js';
import { byteSize } from '../core/dtype.js';
import type { MachineLimits } from '../profiler/roofline.js';

const ROWS = 5632;
const COLS = 2048;
const TOKENS = 64;

/** Fastest seconds of `run` over about `budgetMs` of repetitions. */
function fastest(run: () => void, budgetMs = 300): number {
  run();
  const deadline = performance.now() + budgetMs;
  let best = Infinity;
  for (let count = 0; count < 3 || (performance.now() < deadline && count < 100); count++) {
    const start = performance.now();
    run();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

/** A matrix whose blocks hold small scales and zero quants (the kernels' speed does not depend on the values). */
function weightBytes(dtype: DType): Uint8Array {
  const bytes = new Uint8Array(byteSize(dtype, ROWS * COLS));
  const scale = f32ToF16(0.01);
  const stride = dtype === 'q8_0' ? 34 : 2;
  for (let at = 0; at < bytes.length; at += stride) {
    bytes[at] = scale & 0xff;
    bytes[at + 1] = scale >>> 8;
  }
  return bytes;
}

function matmulGflops(backend: Backend, dtype: DType): number {
  const weight = backend.loadWeight(dtype, [ROWS, COLS], weightBytes(dtype));
  const x = Float32Array.from({ length: COLS * TOKENS }, (_, i) => Math.sin(i));
  const seconds = fastest(() => backend.matmul(x, weight, TOKENS));
  return (2 * ROWS * COLS * TOKENS) / seconds / 1e9;
}

/** A JavaScript triad when the native addon is missing: slower than the machine, so an underestimate. */
function scriptTriad(): number {
  const n = 8 * 1024 * 1024;
  const a = new Float64Array(n);
  const b = new Float64Array(n).fill(1);
  const c = new Float64Array(n).fill(2);
  const seconds = fastest(() => {
    for (let i = 0; i < n; i++) a[i] = b[i] + 3 * c[i];
  });
  return (3 * 8 * n) / seconds / 1e9;
}

export function measureLimits(threads?: number): MachineLimits {
  const backend = createBackend('auto', { threads }, () => undefined);
  const triad = backend instanceof NativeBackend ? backend.measureMemoryBandwidth() : scriptTriad();
  return { memoryBandwidthGBs: triad, int8Gflops: matmulGflops(backend, 'q8_0'), f16Gflops: matmulGflops(backend, 'f16') };
}

/** The best triad of two measurements around the run (the host's memory speed drifts). */
export function bestLimits(a: MachineLimits, b: MachineLimits): MachineLimits {
  return { memoryBandwidthGBs: Math.max(a.memoryBandwidthGBs, b.memoryBandwidthGBs), int8Gflops: Math.max(a.int8Gflops, b.int8Gflops), f16Gflops: Math.max(a.f16Gflops, b.f16Gflops) };
}
