/**
 * Whole models on the WebGPU backend (lavapipe in CI): stories260K's 256
 * golden greedy ids; llama.cpp conformance on synthetic GGUFs (greedy tokens
 * and top logits within the tolerance of each weight type, as for the CPU
 * backends); logits within GPU_LOGIT_TOLERANCE of the reference backend's;
 * one device submission per decode step; weights split over bindings; the
 * coded error when a model does not fit.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Engine } from '../../engine/engine.js';
import { synthesize } from '../../synth/synthesize.js';
import type { SynthArch, SynthDType } from '../../synth/presets.js';
import { fixture } from '../../testing/fixtures.js';
import { assertMatchesLlamaCpp, conformancePrompt } from '../../testing/llama-cpp-conformance.js';
import { TestRandom, assertBitwise, encodeWeight } from '../backend-oracle.js';
import { ReferenceBackend } from '../reference/reference-backend.js';
import { testWebGpuBackend } from './test-device.js';
import { WebGpuBackend } from './webgpu-backend.js';

/** Largest |GPU logit − reference logit| allowed: both dot in f32 from the same weights, in different orders. */
export const GPU_LOGIT_TOLERANCE = 2e-3;

const gpu = testWebGpuBackend();
const skip = typeof gpu === 'string' ? gpu : false;
const scratch = mkdtempSync(join(tmpdir(), 'tessera-webgpu-'));

describe('WebGPU backend: whole models', { skip }, () => {
  const backend = gpu as WebGpuBackend;

  test('stories260K greedy from BOS reproduces all 256 golden ids, one submission a step', async (t) => {
    const model = fixture(t, 'stories260K.bin');
    const goldenPath = fixture(t, 'stories260K.greedy.json');
    if (!model || !goldenPath) return;
    const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as { start_token: number; generated_ids: number[] };
    const engine = await Engine.open(model, { backend });
    const before = backend.submissions;
    const result = await engine.complete({ promptIds: [golden.start_token], maxTokens: golden.generated_ids.length });
    assert.deepEqual(result.ids, golden.generated_ids);
    assert.equal(backend.submissions - before, golden.generated_ids.length, 'one device submission per forward pass');
  });

  const cases: [string, SynthArch, SynthDType][] = [
    ['tiny', 'llama', 'f32'],
    ['tiny', 'llama', 'f16'],
    ['tiny', 'llama', 'q8_0'],
    ['tiny', 'llama', 'q4_0'],
    ['tiny', 'llama', 'q4_k_m'],
    ['tiny-llama3', 'llama', 'q8_0'],
    ['tiny', 'qwen2', 'q8_0'],
    ['tiny', 'qwen3', 'q8_0'],
    ['tiny-mixtral', 'mixtral', 'q8_0'],
  ];
  for (const [preset, arch, dtype] of cases) {
    test(`${preset} ${arch} ${dtype}: llama.cpp's greedy tokens and top logits; logits within ${GPU_LOGIT_TOLERANCE} of the reference backend`, async () => {
      const path = join(scratch, `${preset}-${arch}-${dtype}.gguf`);
      await synthesize({ preset, arch, dtype, out: path, format: 'gguf', seed: 11 });
      const engine = await Engine.open(path, { backend });
      const prompt = conformancePrompt(engine, 16);
      await assertMatchesLlamaCpp(engine, path, dtype, prompt, 24);
      const reference = await Engine.open(path, { backend: new ReferenceBackend() });
      const [ours, theirs] = [await engine.logits(prompt), await reference.logits(prompt)];
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
      assert.ok(worst <= GPU_LOGIT_TOLERANCE, `largest logit difference ${worst}`);
    });
  }

  test('fused matmul + residual add and gate/up + silu-mul give the bits of the separate ops (prefill and decode)', async () => {
    const path = join(scratch, 'fusion.gguf');
    await synthesize({ preset: 'tiny', arch: 'qwen2', dtype: 'q4_k_m', out: path, format: 'gguf', seed: 4 });
    const unfused = new WebGpuBackend({ fuse: false });
    try {
      const request = { promptIds: [1, 17, 33, 90, 12, 7], maxTokens: 12, ignoreEos: true };
      const [a, b] = [await Engine.open(path, { backend }), await Engine.open(path, { backend: unfused })];
      assert.deepEqual((await a.complete(request)).ids, (await b.complete(request)).ids);
      assertBitwise(await a.logits(request.promptIds), await b.logits(request.promptIds), 'logits');
    } finally {
      unfused.close();
    }
  });

  test('a weight split over several bindings gives the bits of one binding', () => {
    const random = new TestRandom(5);
    const [M, K, N] = [37, 256, 3];
    const { bytes } = encodeWeight('q8_0', random.floats(M * K));
    const x = random.floats(N * K);
    const whole = backend.matmul(x, backend.loadWeight('q8_0', [M, K], bytes), N);
    // 8 rows of 272 bytes a part: five parts, the last short.
    const split = new WebGpuBackend({ bindingLimit: 8 * 272 });
    try {
      const weight = split.loadWeight('q8_0', [M, K], bytes);
      assertBitwise(split.matmul(x, weight, N), whole, 'split matmul');
      assertBitwise(split.readRows(weight, 5, 30), backend.readRows(backend.loadWeight('q8_0', [M, K], bytes), 5, 30), 'split readRows');
    } finally {
      split.close();
    }
  });

  test('a model over the memory budget fails with TESSERA_ERR_GPU_OUT_OF_MEMORY and the account', async () => {
    const path = join(scratch, 'budget.gguf');
    await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 2 });
    const small = new WebGpuBackend({ memoryMiB: 0.25 });
    try {
      await assert.rejects(() => Engine.open(path, { backend: small }), (error: Error & { code?: string }) => {
        assert.equal(error.code, 'TESSERA_ERR_GPU_OUT_OF_MEMORY');
        assert.match(error.message, /held: weights .* MiB/);
        return true;
      });
    } finally {
      small.close();
    }
  });
});
