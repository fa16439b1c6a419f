/**
 * Synthetic MoE GGUFs (Mixtral shape as a 'llama' file with experts,
 * Qwen3-MoE, Qwen2-MoE with its shared expert) against llama.cpp through
 * node-llama-cpp: 32 greedy tokens and the raw logits of llama.cpp's top
 * tokens at several lengths.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Engine } from '../engine/engine.js';
import type { SynthArch, SynthDType } from '../synth/presets.js';
import { synthesize } from '../synth/synthesize.js';
import { assertMatchesLlamaCpp, conformancePrompt } from '../testing/llama-cpp-conformance.js';

const scratch = mkdtempSync(join(tmpdir(), 'tessera-moe-conformance-'));
const PROMPT_LENGTH = 16;
const GENERATED = 32;

describe('MoE greedy generation and logits equal llama.cpp on the same file', () => {
  const cases: [string, SynthArch, SynthDType][] = [
    ['tiny-mixtral', 'mixtral', 'f32'],
    ['tiny-mixtral', 'mixtral', 'q8_0'],
    ['tiny-qwen3-moe', 'qwen3_moe', 'f32'],
    ['tiny-qwen3-moe', 'qwen3_moe', 'q8_0'],
    ['tiny-qwen2-moe', 'qwen2_moe', 'f32'],
    ['tiny-qwen2-moe', 'qwen2_moe', 'q8_0'],
  ];
  for (const [preset, arch, dtype] of cases) {
    test(`${preset} ${arch} ${dtype}: ${GENERATED} tokens after a ${PROMPT_LENGTH}-token prompt`, async () => {
      const path = join(scratch, `${preset}-${arch}-${dtype}.gguf`);
      await synthesize({ preset, arch, dtype, out: path, format: 'gguf', seed: 13 });
      const engine = await Engine.open(path);
      assert.equal(engine.config.architecture, arch);
      await assertMatchesLlamaCpp(engine, path, dtype, conformancePrompt(engine, PROMPT_LENGTH), GENERATED);
    });
  }
});

describe('the same MoE weights as GGUF and as an HF directory (packed experts)', () => {
  const cases: [string, SynthArch][] = [
    ['tiny-mixtral', 'mixtral'],
    ['tiny-qwen3-moe', 'qwen3_moe'],
    ['tiny-qwen2-moe', 'qwen2_moe'],
  ];
  for (const [preset, arch] of cases) {
    test(`${arch}: identical greedy tokens and logits within float rounding`, async () => {
      const gguf = join(scratch, `${preset}-${arch}-same.gguf`);
      const hf = join(scratch, `${preset}-${arch}-hf`);
      await synthesize({ preset, arch, dtype: 'f32', out: gguf, format: 'gguf', seed: 5 });
      await synthesize({ preset, arch, dtype: 'f32', out: hf, format: 'hf', seed: 5 });
      const fromGguf = await Engine.open(gguf);
      const fromHf = await Engine.open(hf);
      assert.deepEqual(fromHf.config.moe, fromGguf.config.moe);
      assert.equal(fromHf.config.architecture, arch);
      const promptIds = fromGguf.tokenizer.encode('The little robot read a book about the sea', { addBos: true });
      const a = await fromGguf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
      const b = await fromHf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
      assert.deepEqual(b.ids, a.ids);
      // Mixtral GGUF Q/K rows are permuted for adjacent-pair RoPE, so values agree to rounding, not bits.
      const la = await fromGguf.logits(promptIds);
      const lb = await fromHf.logits(promptIds);
      let max = 0;
      for (let i = 0; i < la.length; i++) max = Math.max(max, Math.abs(la[i] - lb[i]));
      assert.ok(max < 1e-3, `max |Δ| ${max}`);
    });
  }
});
