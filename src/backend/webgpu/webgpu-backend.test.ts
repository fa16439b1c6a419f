/**
 * The WebGPU backend runs the shared conformance suite on whatever adapter
 * Dawn finds (lavapipe in CI): the same tolerances against float64, and the
 * same bit-for-bit determinism across batch sizes, K-shards and chunking.
 */
import { test } from 'node:test';
import { runBackendSuite } from '../backend.case.js';
import { testWebGpuBackend } from './test-device.js';

const backend = testWebGpuBackend();
if (typeof backend === 'string') {
  test('webgpu backend conformance', { skip: backend }, () => {});
} else {
  runBackendSuite(`webgpu (${backend.adapter.description || backend.adapter.device})`, () => backend);
}
