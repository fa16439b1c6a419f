import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../testing/fixtures.js';
import { openHfDirectory, isHfDirectory } from './hf-directory.js';
import { writeSafetensors } from './safetensors-writer.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-hf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const CONFIG = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 4, vocab_size: 3 };

function writeWeights(dir: string, file = 'model.safetensors'): void {
  writeSafetensors(join(dir, file), [
    { name: 'model.embed_tokens.weight', dtype: 'f32', shape: [3, 4], data: () => new Uint8Array(48).fill(1) },
    { name: 'model.norm.weight', dtype: 'bf16', shape: [4], data: () => new Uint8Array(8).fill(2) },
  ]);
}

test('opens a directory with config, tokenizer and generation files', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
  writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 2, temperature: 0.6 }));
  writeFileSync(join(dir, 'tokenizer.json'), '{}');
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{{ messages }}', bos_token: '<s>' }));
  writeWeights(dir);

  assert.equal(isHfDirectory(dir), true);
  const hf = openHfDirectory(dir);
  t.after(() => hf.store.close());
  assert.equal(hf.dir, dir);
  assert.deepEqual(hf.config, CONFIG);
  assert.deepEqual(hf.generationConfig, { eos_token_id: 2, temperature: 0.6 });
  assert.equal(hf.tokenizerJsonPath, join(dir, 'tokenizer.json'));
  assert.equal(hf.tokenizerConfig?.bos_token, '<s>');
  assert.deepEqual(hf.store.get('output_norm.weight'), { name: 'output_norm.weight', dtype: 'bf16', shape: [4] });
  assert.deepEqual(hf.store.readRows('token_embd.weight', 2, 3), new Uint8Array(16).fill(1));
});

test('optional files may be absent, and a lone *.safetensors of another name is found', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
  writeWeights(dir, 'weights.safetensors');
  const hf = openHfDirectory(dir);
  t.after(() => hf.store.close());
  assert.equal(hf.generationConfig, undefined);
  assert.equal(hf.tokenizerJsonPath, undefined);
  assert.equal(hf.tokenizerConfig, undefined);
  assert.equal(hf.store.list().length, 2);
});

test('a missing or invalid config.json and missing weights give coded errors', (t) => {
  const dir = tempDir(t);
  assert.equal(isHfDirectory(dir), false);
  assert.throws(() => openHfDirectory(dir), { code: 'TESSERA_ERR_BAD_CONFIG', message: /config\.json/ });
  writeFileSync(join(dir, 'config.json'), '{"hidden_size": ');
  assert.throws(() => openHfDirectory(dir), { code: 'TESSERA_ERR_BAD_CONFIG' });
  writeFileSync(join(dir, 'config.json'), '[1, 2]');
  assert.throws(() => openHfDirectory(dir), { code: 'TESSERA_ERR_BAD_CONFIG' });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(CONFIG));
  assert.throws(() => openHfDirectory(dir), { code: 'TESSERA_ERR_FILE_NOT_FOUND', message: /safetensors/ });
  writeWeights(dir);
  writeFileSync(join(dir, 'generation_config.json'), 'not json');
  assert.throws(() => openHfDirectory(dir), { code: 'TESSERA_ERR_BAD_CONFIG', message: /generation_config/ });
  assert.throws(() => openHfDirectory(join(dir, 'absent')), { code: 'TESSERA_ERR_FILE_NOT_FOUND' });
});

test('opens a directory assembled from a real Qwen2-MoE fixture', (t) => {
  const weights = fixture(t, 'moe-fixtures/qwen_moe_tiny.safetensors');
  const config = fixture(t, 'moe-fixtures/qwen_moe_tiny_config.json');
  if (!weights || !config) return;
  const dir = tempDir(t);
  // The fixture folder is not laid out as an HF directory, so link one together.
  symlinkSync(weights, join(dir, 'model.safetensors'));
  symlinkSync(config, join(dir, 'config.json'));
  const hf = openHfDirectory(dir);
  t.after(() => hf.store.close());
  assert.equal(hf.config.model_type, 'qwen2_moe');
  assert.deepEqual(hf.store.get('blk.0.attn_q.bias')?.shape, [32]);
  assert.deepEqual(hf.store.get('token_embd.weight')?.shape, [48, 32]);
});
