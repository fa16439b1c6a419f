/**
 * Test helper: one WebGPU backend per test process (opening a device costs
 * about half a second), or the reason there is none. Without an adapter the
 * WebGPU tests skip, unless TESSERA_REQUIRE_GPU=1 (as in CI, where .ci/run
 * installs lavapipe), when that is a failure.
 */
import { isTesseraError } from '../../core/errors.js';
import { WebGpuBackend } from './webgpu-backend.js';

let shared: WebGpuBackend | string | undefined;

/** The shared backend, or why the WebGPU tests skip. Throws when a GPU is required and missing. */
export function testWebGpuBackend(): WebGpuBackend | string {
  if (shared !== undefined) return shared;
  try {
    shared = new WebGpuBackend();
  } catch (error) {
    if (process.env.TESSERA_REQUIRE_GPU === '1' || !isTesseraError(error)) throw error;
    shared = `no WebGPU adapter (${error.message})`;
  }
  return shared;
}
