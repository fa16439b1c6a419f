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
import { openLlamaCppPeer } from '../peer/llama-cpp.js';
import type { SynthArch, SynthDType } from '../synth/presets.js';
import { synthesize } from '../synth/synthesize.js';

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
      const text = 'Once upon a time there was a little robot who liked to read old books by the sea';
      const promptIds = engine.tokenizer.encode(text, { addBos: true }).slice(0, PROMPT_LENGTH);
      assert.equal(promptIds.length, PROMPT_LENGTH);
      const ours = (await engine.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true })).ids;
      const peer = await openLlamaCppPeer(path, { threads: 1, contextSize: 128 });
      try {
        const theirs = await peer.greedy(promptIds, GENERATED);
        assert.deepEqual(ours.slice(0, theirs.length), theirs);
        assert.ok(theirs.length >= GENERATED / 2, `llama.cpp stopped after ${theirs.length} tokens`);
        const sequence = [...promptIds, ...ours];
        // llama.cpp rounds activations to 8 bits for Q8_0 weights.
        const tolerance = dtype === 'f32' ? 0.02 : 0.35;
        for (const length of [4, 11, PROMPT_LENGTH, sequence.length]) {
          const prefix = sequence.slice(0, length);
          const top = await peer.nextTokenLogits(prefix, 20);
          const row = (await engine.logits(prefix)).subarray((length - 1) * engine.config.vocabSize);
          for (const { token, logit } of top) {
            assert.ok(Math.abs(row[token] - logit) <= tolerance, `length ${length} token ${token}: ours ${row[token]} vs llama.cpp ${logit}`);
          }
          assert.equal(row.indexOf(Math.max(...row)), top[0].token);
        }
      } finally {
        await peer.close();
      }
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
