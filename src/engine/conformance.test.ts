/**
 * Conformance with llama.cpp (through node-llama-cpp) on the same GGUF files,
 * and between the GGUF and Hugging Face forms of the same synthetic weights.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { synthesize } from '../synth/synthesize.js';
import type { SynthArch, SynthDType } from '../synth/presets.js';
import { assertMatchesLlamaCpp, conformancePrompt } from '../testing/llama-cpp-conformance.js';
import { Engine } from './engine.js';

const scratch = mkdtempSync(join(tmpdir(), 'tessera-conformance-'));
const PROMPT_LENGTH = 16;
const GENERATED = 32;

async function synthGguf(arch: SynthArch, dtype: SynthDType, seed = 11, preset = 'tiny'): Promise<string> {
  const out = join(scratch, `${preset}-${arch}-${dtype}-${seed}.gguf`);
  await synthesize({ preset, arch, dtype, out, format: 'gguf', seed });
  return out;
}

describe('greedy generation equals llama.cpp on the same file', () => {
  // tiny-llama3: Llama 3 features (llama3 RoPE scaling via rope_freqs, tied embeddings, byte-level BPE).
  const cases: [string, SynthArch, SynthDType][] = [
    ['tiny', 'llama', 'f32'],
    ['tiny', 'llama', 'q8_0'],
    ['tiny', 'llama', 'f16'],
    ['tiny', 'llama', 'q4_0'],
    ['tiny-llama3', 'llama', 'f32'],
    ['tiny-llama3', 'llama', 'q8_0'],
    ['tiny', 'qwen2', 'f32'],
    ['tiny', 'qwen2', 'q8_0'],
    ['tiny', 'qwen3', 'f32'],
    ['tiny', 'qwen3', 'q8_0'],
  ];
  for (const [preset, arch, dtype] of cases) {
    test(`${preset} ${arch} ${dtype}: ${GENERATED} tokens after a ${PROMPT_LENGTH}-token prompt`, async () => {
      const path = await synthGguf(arch, dtype, 11, preset);
      const engine = await Engine.open(path);
      await assertMatchesLlamaCpp(engine, path, dtype, conformancePrompt(engine, PROMPT_LENGTH), GENERATED);
    });
  }
});

describe('the same weights as GGUF and as an HF directory', () => {
  test('mistral: an HF Mistral directory runs as the Llama-family decoder it is', async () => {
    const gguf = await synthGguf('llama', 'f32', 6);
    const hf = join(scratch, 'mistral-hf');
    await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: hf, format: 'hf', seed: 6 });
    const configPath = join(hf, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify({ ...config, model_type: 'mistral', architectures: ['MistralForCausalLM'], sliding_window: null }));
    const fromGguf = await Engine.open(gguf);
    const fromHf = await Engine.open(hf);
    assert.equal(fromHf.config.architecture, 'mistral');
    const promptIds = fromGguf.tokenizer.encode('A small robot sails across the sea', { addBos: true });
    const a = await fromGguf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
    const b = await fromHf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
    assert.deepEqual(b.ids, a.ids);
  });

  for (const arch of ['llama', 'qwen2', 'qwen3'] as SynthArch[]) {
    test(`${arch}: identical greedy tokens`, async () => {
      const gguf = await synthGguf(arch, 'f32', 5);
      const hf = join(scratch, `${arch}-hf`);
      await synthesize({ preset: 'tiny', arch, dtype: 'f32', out: hf, format: 'hf', seed: 5 });
      const fromGguf = await Engine.open(gguf);
      const fromHf = await Engine.open(hf);
      const text = 'The little robot read a book about the sea and the stars';
      const promptIds = fromGguf.tokenizer.encode(text, { addBos: true });
      assert.deepEqual(fromHf.tokenizer.encode(text, { addBos: true }), promptIds);
      const a = await fromGguf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
      const b = await fromHf.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true });
      assert.deepEqual(b.ids, a.ids);
      assert.equal(b.text, a.text);
    });
  }
});
