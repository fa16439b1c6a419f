/**
 * What a worker tells the coordinator about itself when it joins: the memory
 * it offers, its cores, a short measured matrix-multiply rate (placement
 * splits pipeline stages in proportion to speed) and its accelerator.
 */
import { availableParallelism, freemem } from 'node:os';
import { createBackend } from '../backend/native/select-backend.js';
import type { NodeHardware } from './cluster-state.js';

export interface HardwareOptions {
  /** Memory the worker offers (--memory-mib); default: the machine's free memory now. */
  memoryMib?: number;
  /** How long the matmul measurement runs (default 40 ms). */
  measureMs?: number;
}

/** [M, K] weight and [N, K] input of the measurement: small enough to stay in cache, big enough to time. */
const [M, K, N] = [256, 512, 8];

export function measureHardware(options: HardwareOptions = {}): NodeHardware {
  return {
    memoryBytes: options.memoryMib !== undefined ? options.memoryMib * 2 ** 20 : freemem(),
    cores: availableParallelism(),
    matmulGflops: matmulRate(options.measureMs ?? 40),
    accelerator: 'cpu',
  };
}

/**
 * GFLOP/s of one thread of the backend this machine computes with ('auto'),
 * f32 weights: the best of several short runs, so a moment of contention on
 * a shared machine does not make the node look slow.
 */
function matmulRate(measureMs: number): number {
  const backend = createBackend('auto', { threads: 1 }, () => undefined);
  const values = new Float32Array(M * K).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const weight = backend.loadWeight('f32', [M, K], new Uint8Array(values.buffer));
  /** [N, K] */
  const x = new Float32Array(N * K).fill(0.25);
  backend.matmul(x, weight, N);
  let best = 0;
  const end = performance.now() + measureMs;
  while (performance.now() < end) {
    const started = performance.now();
    let calls = 0;
    do {
      backend.matmul(x, weight, N);
      calls++;
    } while (performance.now() - started < measureMs / 8);
    best = Math.max(best, (2 * M * K * N * calls) / ((performance.now() - started) * 1e6));
  }
  return best;
}
