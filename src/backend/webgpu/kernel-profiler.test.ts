/**
 * TESSERA_WEBGPU_PROFILE=1 (on adapters with timestamp queries, lavapipe
 * included): every dispatch of a step is timed and summed per kernel label,
 * and timing changes no bit of the output.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../engine/engine.js';
import { synthesize } from '../../synth/synthesize.js';
import { testWebGpuBackend } from './test-device.js';
import { WebGpuBackend } from './webgpu-backend.js';
import { kernelLabel } from './kernel-profiler.js';

const gpu = testWebGpuBackend();
const skip = typeof gpu === 'string' ? gpu : !gpu.adapter.features.includes('timestamp-query') ? 'the adapter has no timestamp queries' : false;

test('kernel labels name the variant', () => {
  assert.equal(kernelLabel({ kind: 'matmul', dtype: 'q8_0', tokens: 8, lanes: 32, shuffles: true, gated: true }), 'matmul gated q8_0 ×8');
  assert.equal(kernelLabel({ kind: 'attention', dtype: 'f16' }), 'attention f16');
  assert.equal(kernelLabel({ kind: 'rmsNorm' }), 'rmsNorm');
});

test('a profiled run times every dispatch per kernel and gives the same ids', { skip }, async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tessera-profile-')), 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: path, format: 'gguf', seed: 3 });
  const request = { promptIds: [1, 5, 9, 14, 2], maxTokens: 6, ignoreEos: true };
  // The GPU thread reads the variable when it opens its device.
  process.env.TESSERA_WEBGPU_PROFILE = '1';
  const profiled = new WebGpuBackend();
  delete process.env.TESSERA_WEBGPU_PROFILE;
  try {
    const ids = (await (await Engine.open(path, { backend: profiled })).complete(request)).ids;
    const plain = (await (await Engine.open(path, { backend: gpu as WebGpuBackend })).complete(request)).ids;
    assert.deepEqual(ids, plain);
    const kernels = profiled.timings.kernels;
    const labels = Object.keys(kernels);
    assert.ok(labels.some((label) => label.startsWith('matmul q8_0 ×1 [')), labels.join(', '));
    assert.ok(labels.some((label) => label.startsWith('attention f32 [')), labels.join(', '));
    const dispatches = Object.values(kernels).reduce((sum, time) => sum + time.dispatches, 0);
    assert.equal(dispatches, profiled.timings.dispatches);
    assert.ok(Object.values(kernels).every((time) => time.ms >= 0 && Number.isFinite(time.ms)));
    assert.ok(Object.values(kernels).reduce((sum, time) => sum + time.ms, 0) > 0);
    assert.deepEqual((gpu as WebGpuBackend).timings.kernels, {}, 'an unprofiled backend records no kernel times');
  } finally {
    profiled.close();
  }
});
