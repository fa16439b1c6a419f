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
import { openLlamaCppPeer } from '../peer/llama-cpp.js';
import { Engine } from './engine.js';

const scratch = mkdtempSync(join(tmpdir(), 'tessera-conformance-'));
const PROMPT_LENGTH = 16;
const GENERATED = 32;

async function synthGguf(arch: SynthArch, dtype: SynthDType, seed = 11, preset = 'tiny'): Promise<string> {
  const out = join(scratch, `${preset}-${arch}-${dtype}-${seed}.gguf`);
  await synthesize({ preset, arch, dtype, out, format: 'gguf', seed });
  return out;
}

/** A 16-token prompt: BOS (where the model has one) and English text. */
function promptFor(engine: Engine): number[] {
  const ids = engine.tokenizer.encode('Once upon a time there was a little robot who liked to read old books by the sea', { addBos: true });
  assert.ok(ids.length >= PROMPT_LENGTH, `prompt has only ${ids.length} tokens`);
  return ids.slice(0, PROMPT_LENGTH);
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
      const promptIds = promptFor(engine);
      const ours = (await engine.complete({ promptIds, maxTokens: GENERATED, ignoreEos: true })).ids;
      const peer = await openLlamaCppPeer(path, { threads: 1, contextSize: 128 });
      try {
        const theirs = await peer.greedy(promptIds, GENERATED);
        assert.deepEqual(ours.slice(0, theirs.length), theirs);
        assert.ok(theirs.length >= GENERATED / 2, `llama.cpp stopped after ${theirs.length} tokens`);
        // Greedy agreement alone is weak evidence (synth plants wide logit margins so that
        // llama.cpp's 8-bit activations cannot flip tokens), so the raw logits of llama.cpp's
        // top tokens must agree too, at several prompt lengths and deep into the generation.
        const sequence = [...promptIds, ...ours];
        // llama.cpp rounds activations to f16 for F16 weights and to 8 bits for Q8_0/Q4_0.
        const tolerance = { f32: 0.02, f16: 0.05, q8_0: 0.35, q4_0: 0.5, q4_k_m: 0.5 }[dtype];
        for (const length of [4, 11, PROMPT_LENGTH, sequence.length]) {
          const prefix = sequence.slice(0, length);
          const top = await peer.nextTokenLogits(prefix, 20);
          const logits = await engine.logits(prefix);
          const row = logits.subarray((length - 1) * engine.config.vocabSize);
          for (const { token, logit } of top) {
            assert.ok(Math.abs(row[token] - logit) <= tolerance, `length ${length} token ${token}: ours ${row[token]} vs llama.cpp ${logit}`);
          }
          const ourBest = row.indexOf(Math.max(...row));
          assert.equal(ourBest, top[0].token);
        }
      } finally {
        await peer.close();
      }
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
