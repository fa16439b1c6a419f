import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isTesseraError } from '../core/errors.js';
import { dequantize } from '../core/quant.js';
import { GgufStore, readGgufHeader } from '../format/gguf-reader.js';
import { openHfDirectory } from '../format/hf-directory.js';
import { hfFromCanonical } from '../format/hf-names.js';
import { readTensor, type TensorStore } from '../format/tensor-store.js';
import { getPreset, presetNames, type SynthArch } from './presets.js';
import { synthConfig, synthesize, synthModel } from './synthesize.js';
import { buildVocabulary } from './vocabulary.js';
import { llama3RopeFactors, permuteForGguf, unpermuteFromGguf } from './weights.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-synth-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function floats(store: TensorStore, name: string): Float32Array {
  const info = store.get(name);
  assert.ok(info, `missing ${name}`);
  const elements = info.shape.reduce((a, b) => a * b, 1);
  return dequantize(info.dtype, readTensor(store, name), elements);
}

test('presets carry the real shapes', () => {
  assert.ok(presetNames().includes('tinyllama-1.1b'));
  const qwen3 = synthConfig('qwen3-0.6b', 'qwen3');
  assert.equal(qwen3.headDim, 128);
  assert.equal(qwen3.numHeads * qwen3.headDim, 2048);
  assert.equal(qwen3.hiddenSize, 1024);
  assert.ok(qwen3.qkNorm && !qwen3.qkvBias && qwen3.tiedEmbeddings);
  const llama = synthConfig('llama-3.2-1b', 'llama', 3);
  assert.equal(llama.numLayers, 3);
  assert.deepEqual(llama.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 });
  assert.equal(synthConfig('qwen2.5-0.5b', 'qwen2').qkvBias, true);
  assert.equal(getPreset('tinyllama-1.1b').vocabSize, 32000);
});

test('unknown presets and HF with quantized dtypes are refused with coded errors', async () => {
  await assert.rejects(
    synthesize({ preset: 'nope', arch: 'llama', dtype: 'f32', out: join(dir, 'x.gguf'), format: 'gguf', seed: 1 }),
    (error) => isTesseraError(error) && error.code === 'TESSERA_ERR_UNKNOWN_PRESET' && error.message.includes('tinyllama-1.1b'),
  );
  await assert.rejects(
    synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: join(dir, 'hf-q8'), format: 'hf', seed: 1 }),
    (error) => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT' && error.message.includes('f32/f16/bf16'),
  );
});

test('vocabularies have exactly the preset size and unique tokens', () => {
  for (const [style, size] of [['sentencepiece', 32000], ['qwen2', 151936], ['llama-bpe', 128256], ['qwen2', 512]] as const) {
    const vocabulary = buildVocabulary(style, size);
    assert.equal(vocabulary.tokens.length, size, style);
    assert.equal(new Set(vocabulary.tokens).size, size, `${style} tokens are unique`);
    assert.equal(vocabulary.tokenTypes.length, size);
  }
  const qwen = buildVocabulary('qwen2', 151936);
  assert.equal(qwen.tokens[151643], '<|endoftext|>');
  assert.equal(qwen.tokens[qwen.eosTokenId], '<|im_end|>');
  const llama3 = buildVocabulary('llama-bpe', 128256);
  assert.equal(llama3.tokens[128000], '<|begin_of_text|>');
  assert.equal(llama3.tokens[128009], '<|eot_id|>');
});

test('same seed gives identical bytes, another seed other bytes', async () => {
  const write = async (name: string, seed: number): Promise<Buffer> => {
    const out = join(dir, name);
    await synthesize({ preset: 'tiny', arch: 'qwen2', dtype: 'q8_0', out, format: 'gguf', seed });
    return readFileSync(out);
  };
  const a = await write('a.gguf', 7);
  const b = await write('b.gguf', 7);
  const c = await write('c.gguf', 8);
  assert.ok(a.equals(b));
  assert.equal(a.length, c.length);
  assert.ok(!a.equals(c));
});

test('GGUF permutation of llama Q/K rows round-trips and pairs halves into neighbours', () => {
  // 2 heads of headDim 4, 1 column: HF rows per head [r0 r1 | r2 r3] → GGUF [r0 r2 r1 r3].
  const hf = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
  assert.deepEqual([...permuteForGguf(hf, 2, 1)], [0, 2, 1, 3, 10, 12, 11, 13]);
  const wide = Float32Array.from({ length: 8 * 3 }, (_, i) => i);
  assert.deepEqual(unpermuteFromGguf(permuteForGguf(wide, 2, 3), 2, 3), wide);
});

test('llama3 rope factors follow the converter: 1 for short wavelengths, factor for long ones', () => {
  const factors = llama3RopeFactors(synthConfig('llama-3.2-1b', 'llama'));
  assert.equal(factors.length, 32);
  assert.equal(factors[0], 1);
  assert.equal(factors[31], 32);
  for (let i = 1; i < 32; i++) assert.ok(factors[i] >= factors[i - 1]);
});

for (const arch of ['llama', 'qwen2', 'qwen3'] as SynthArch[]) {
  test(`${arch}: the HF directory holds the same weights as the GGUF file`, async () => {
    const preset = arch === 'llama' ? 'tiny-llama3' : 'tiny';
    const ggufPath = join(dir, `same-${arch}.gguf`);
    const hfPath = join(dir, `same-${arch}-hf`);
    await synthesize({ preset, arch, dtype: 'f16', out: ggufPath, format: 'gguf', seed: 3 });
    await synthesize({ preset, arch, dtype: 'f16', out: hfPath, format: 'hf', seed: 3 });
    const gguf = new GgufStore(ggufPath);
    const hf = openHfDirectory(hfPath);
    const { config } = synthModel(preset, arch);
    const config_json = JSON.parse(readFileSync(join(hfPath, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config_json.head_dim, config.headDim);
    assert.equal(config_json.tie_word_embeddings, config.tiedEmbeddings);
    try {
      let compared = 0;
      for (const info of gguf.list()) {
        if (info.name === 'rope_freqs.weight') continue;
        const fromHf = hf.store.get(info.name) ? floats(hf.store, info.name) : undefined;
        assert.ok(fromHf, `HF lacks ${info.name} (${hfFromCanonical(info.name)})`);
        let fromGguf = floats(gguf, info.name);
        const cols = info.shape[info.shape.length - 1];
        if (arch === 'llama' && info.name.endsWith('attn_q.weight')) fromGguf = unpermuteFromGguf(fromGguf, config.numHeads, cols);
        if (arch === 'llama' && info.name.endsWith('attn_k.weight')) fromGguf = unpermuteFromGguf(fromGguf, config.numKvHeads, cols);
        assert.deepEqual(fromGguf, fromHf, info.name);
        compared++;
      }
      assert.equal(compared, hf.store.list().length);
    } finally {
      gguf.close();
      hf.store.close();
    }
    const header = readGgufHeader(ggufPath);
    assert.equal(header.metadata.get('general.architecture'), arch);
    assert.equal((header.metadata.get('tokenizer.ggml.tokens') as string[]).length, config.vocabSize);
  });
}

test("q4_k_m follows llama.cpp's mix: q4_k matrices, q6_k for ffn_down, attn_v and the head, within q4_k error of f32", async () => {
  const [mixed, exact] = [join(dir, 'q4km.gguf'), join(dir, 'q4km-f32.gguf')];
  await synthesize({ preset: 'small', arch: 'llama', dtype: 'q4_k_m', out: mixed, format: 'gguf', seed: 5, layers: 1 });
  await synthesize({ preset: 'small', arch: 'llama', dtype: 'f32', out: exact, format: 'gguf', seed: 5, layers: 1 });
  const store = new GgufStore(mixed);
  const reference = new GgufStore(exact);
  assert.equal(store.get('blk.0.attn_q.weight')?.dtype, 'q4_k');
  assert.equal(store.get('blk.0.ffn_gate.weight')?.dtype, 'q4_k');
  assert.equal(store.get('blk.0.ffn_down.weight')?.dtype, 'q6_k');
  assert.equal(store.get('blk.0.attn_v.weight')?.dtype, 'q6_k');
  assert.equal(store.get('blk.0.attn_norm.weight')?.dtype, 'f32');
  assert.equal(readGgufHeader(mixed).metadata.get('general.file_type'), 15);
  for (const name of ['blk.0.attn_q.weight', 'blk.0.ffn_down.weight']) {
    const [ours, truth] = [floats(store, name), floats(reference, name)];
    const scale = truth.reduce((max, v) => Math.max(max, Math.abs(v)), 0);
    const worst = ours.reduce((max, v, i) => Math.max(max, Math.abs(v - truth[i])), 0);
    assert.ok(worst > 0 && worst < 0.1 * scale, `${name}: max error ${worst} of ${scale}`);
  }
});
