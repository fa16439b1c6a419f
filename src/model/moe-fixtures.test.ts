/**
 * The MoE fixtures of shared/models (tiny random Mixtral and Qwen2-MoE with
 * float64 Hugging Face reference logits): loaded from NAME.safetensors +
 * NAME_config.json, through the real CLI and the engine.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { NativeBackend } from '../backend/native/native-backend.js';
import { isTesseraError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { KvCache } from '../engine/kv-cache.js';
import { SafetensorsStore } from '../format/safetensors.js';
import { writeSafetensors } from '../format/safetensors-writer.js';
import { fixture, projectRoot } from '../testing/fixtures.js';

interface Reference {
  input_ids: number[];
  /** [seq * vocab] float64 */
  hf_logits: number[];
  greedy_ids?: number[];
}

const FIXTURES = ['gqa_mixtral', 'mixtral_scale', 'qwen_moe_tiny'] as const;
const TOLERANCE = 1e-4;

function reference(t: TestContext, name: string): { model: string; ref: Reference } | undefined {
  const model = fixture(t, `moe-fixtures/${name}.safetensors`);
  const json = fixture(t, `moe-fixtures/${name}.json`);
  if (!model || !json) return undefined;
  return { model, ref: JSON.parse(readFileSync(json, 'utf8')) as Reference };
}

function maxAbsDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.equal(actual.length, expected.length);
  let max = 0;
  for (let i = 0; i < actual.length; i++) max = Math.max(max, Math.abs(actual[i] - expected[i]));
  return max;
}

for (const name of FIXTURES) {
  test(`${name}: tessera logits matches the Hugging Face float64 logits at every position`, (t) => {
    const found = reference(t, name);
    if (!found) return;
    const bin = join(projectRoot, 'bin', 'tessera.js');
    const result = spawnSync(process.execPath, [bin, 'logits', '--model', found.model, '--prompt-ids', found.ref.input_ids.join(','), '--json'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(result.status, 0, result.stderr);
    const rows = (JSON.parse(result.stdout) as { logits: number[][] }).logits;
    assert.equal(rows.length, found.ref.input_ids.length);
    const difference = maxAbsDifference(rows.flat(), found.ref.hf_logits);
    assert.ok(difference <= TOLERANCE, `max |Δ| ${difference} > ${TOLERANCE}`);
  });
}

const nativeLoad = loadNativeAddon();
for (const name of FIXTURES) {
  test(`${name}: the native backend's grouped expert matmuls match the HF logits too`, { skip: nativeLoad.ok ? false : `the native addon is not built` }, async (t) => {
    const found = reference(t, name);
    if (!found) return;
    const engine = await Engine.open(found.model, { backend: new NativeBackend({ threads: 1 }) });
    const difference = maxAbsDifference(await engine.logits(found.ref.input_ids), found.ref.hf_logits);
    assert.ok(difference <= TOLERANCE, `max |Δ| ${difference} > ${TOLERANCE}`);
  });
}

for (const name of ['mixtral_scale', 'qwen_moe_tiny'] as const) {
  test(`${name}: greedy generation reproduces greedy_ids (past EOS)`, async (t) => {
    const found = reference(t, name);
    if (!found) return;
    assert.ok(found.ref.greedy_ids, 'fixture has greedy_ids');
    const engine = await Engine.open(found.model);
    const result = await engine.complete({ promptIds: found.ref.input_ids, maxTokens: found.ref.greedy_ids.length, ignoreEos: true });
    assert.deepEqual(result.ids, found.ref.greedy_ids);
  });
}

test('gqa_mixtral: greedy from its first 3 ids reproduces gqa_mixtral_gen.json, and stops at EOS when asked', async (t) => {
  const found = reference(t, 'gqa_mixtral');
  const gen = fixture(t, 'moe-fixtures/gqa_mixtral_gen.json');
  if (!found || !gen) return;
  const expected = JSON.parse(readFileSync(gen, 'utf8')) as { greedy_ids: number[]; eos_token_id: number };
  const engine = await Engine.open(found.model);
  const prompt = found.ref.input_ids.slice(0, 3);
  const full = await engine.complete({ promptIds: prompt, maxTokens: expected.greedy_ids.length, ignoreEos: true });
  assert.deepEqual(full.ids, expected.greedy_ids);
  // The second generated id is the config's EOS: a normal run stops there.
  const stopped = await engine.complete({ promptIds: prompt, maxTokens: 8 });
  assert.deepEqual(stopped.ids, expected.greedy_ids.slice(0, expected.greedy_ids.indexOf(expected.eos_token_id)));
  assert.equal(stopped.finishReason, 'stop');
});

test('classic Mixtral layout (block_sparse_moe.experts.e.w1/w2/w3) gives the same logits bit for bit as the packed one', async (t) => {
  const found = reference(t, 'gqa_mixtral');
  if (!found) return;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-moe-classic-'));
  const classic = join(dir, 'classic.safetensors');
  writeClassicMixtral(found.model, classic);
  copyFileSync(found.model.replace('.safetensors', '_config.json'), join(dir, 'classic_config.json'));
  const packedLogits = await (await Engine.open(found.model)).logits(found.ref.input_ids);
  const classicLogits = await (await Engine.open(classic)).logits(found.ref.input_ids);
  assert.deepEqual(classicLogits, packedLogits);
});

/** Re-packs the fixture's `mlp.experts.gate_up_proj`/`down_proj` as one w1/w3/w2 tensor per expert. */
function writeClassicMixtral(packedPath: string, outPath: string): void {
  const store = SafetensorsStore.open(packedPath);
  const tensors: Parameters<typeof writeSafetensors>[1] = [];
  const rowBytes = (cols: number): number => cols * 4;
  for (const info of store.list()) {
    const source = store.sourceName(info.name)!;
    const bytes = store.readRows(info.name, 0, info.shape.length === 1 ? 1 : info.shape.slice(0, -1).reduce((a, b) => a * b, 1));
    const layer = /^model\.layers\.(\d+)\./.exec(source)?.[1];
    if (source.endsWith('mlp.experts.gate_up_proj')) {
      const [experts, twiceFf, hidden] = info.shape;
      const ff = twiceFf / 2;
      for (let e = 0; e < experts; e++) {
        const at = (row: number): number => (e * twiceFf + row) * rowBytes(hidden);
        const prefix = `model.layers.${layer}.block_sparse_moe.experts.${e}`;
        tensors.push({ name: `${prefix}.w1.weight`, dtype: 'f32', shape: [ff, hidden], data: () => bytes.slice(at(0), at(ff)) });
        tensors.push({ name: `${prefix}.w3.weight`, dtype: 'f32', shape: [ff, hidden], data: () => bytes.slice(at(ff), at(twiceFf)) });
      }
    } else if (source.endsWith('mlp.experts.down_proj')) {
      const [experts, hidden, ff] = info.shape;
      const size = hidden * rowBytes(ff);
      for (let e = 0; e < experts; e++) {
        const name = `model.layers.${layer}.block_sparse_moe.experts.${e}.w2.weight`;
        tensors.push({ name, dtype: 'f32', shape: [hidden, ff], data: () => bytes.slice(e * size, (e + 1) * size) });
      }
    } else {
      const name = source.replace('.mlp.gate.weight', '.block_sparse_moe.gate.weight');
      tensors.push({ name, dtype: 'f32', shape: [...info.shape], data: () => bytes });
    }
  }
  store.close();
  writeSafetensors(outPath, tensors);
}

test('MoE logits of a sequence do not depend on batching or prefill chunks (bitwise)', async (t) => {
  const found = reference(t, 'qwen_moe_tiny');
  if (!found) return;
  const engine = await Engine.open(found.model);
  const ids = found.ref.input_ids;
  const whole = await engine.logits(ids);
  const model = engine.transformer;
  const vocab = engine.config.vocabSize;
  const cache = new KvCache(engine.config, 8);
  // Token by token: each step routes a batch of one token.
  const sequence = cache.allocate(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const row = await model.forward(Int32Array.of(ids[i]), Int32Array.of(i), sequence, 'last');
    assert.deepEqual(row, whole.subarray(i * vocab, (i + 1) * vocab), `position ${i}`);
  }
  // In one batch with another sequence whose tokens go to other experts.
  const other = [5, 6, 7, 8, 9, 10];
  const first = cache.allocate(ids.length);
  const second = cache.allocate(other.length);
  const batched = await model.forwardBatch({
    ids: Int32Array.from([...other, ...ids]),
    segments: [
      { kv: second, start: 0, positions: Int32Array.from(other.keys()), logits: 'none' },
      { kv: first, start: other.length, positions: Int32Array.from(ids.keys()), logits: 'all' },
    ],
  });
  assert.deepEqual(batched, whole);
});

test('expert token counts are recorded per layer: k per token in every MoE layer', async (t) => {
  const found = reference(t, 'mixtral_scale');
  if (!found) return;
  const engine = await Engine.open(found.model);
  const load = engine.transformer.expertLoad;
  await engine.logits(found.ref.input_ids);
  const { tokens, steps } = load.snapshot();
  assert.equal(tokens.length, 2);
  for (const row of tokens) {
    assert.equal(row.length, 8);
    assert.equal(row.reduce((a, b) => a + b, 0), found.ref.input_ids.length * 2);
  }
  assert.deepEqual(steps, [1, 1]);
  assert.ok(load.imbalance(0) >= 1);
});

test('an ids-only model runs on ids and refuses text with TESSERA_ERR_TOKENIZER', async (t) => {
  const found = reference(t, 'gqa_mixtral');
  if (!found) return;
  const engine = await Engine.open(found.model);
  assert.throws(() => engine.tokenizer.encode('hello'), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_TOKENIZER');
  const result = await engine.complete({ promptIds: [1, 2], maxTokens: 2, ignoreEos: true });
  assert.equal(result.ids.length, 2);
  assert.equal(result.text, '');
});

test('a lone safetensors file without a config beside it is TESSERA_ERR_BAD_CONFIG', async (t) => {
  const found = reference(t, 'gqa_mixtral');
  if (!found) return;
  const dir = mkdtempSync(join(tmpdir(), 'tessera-moe-noconfig-'));
  const lone = join(dir, 'lonely.safetensors');
  copyFileSync(found.model, lone);
  await assert.rejects(Engine.open(lone), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_BAD_CONFIG' && /lonely_config\.json/.test(error.message));
  writeFileSync(join(dir, 'lonely_config.json'), readFileSync(found.model.replace('.safetensors', '_config.json')));
  assert.equal((await Engine.open(lone)).config.architecture, 'mixtral');
});

test('tessera run --json reports tokens per expert per layer for an MoE model', (t) => {
  const found = reference(t, 'qwen_moe_tiny');
  if (!found) return;
  const bin = join(projectRoot, 'bin', 'tessera.js');
  const args = ['run', '--model', found.model, '--prompt-ids', found.ref.input_ids.join(','), '--max-tokens', '4', '--json'];
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, result.stderr);
  const output = JSON.parse(result.stdout) as { ids: number[]; expertLoad: { steps: number[]; tokens: number[][] } };
  // One prefill step over the prompt, then one step per generated token but the last.
  const steps = 1 + output.ids.length - (output.ids.length === 4 ? 1 : 0);
  const routed = (found.ref.input_ids.length + steps - 1) * 2;
  assert.deepEqual(output.expertLoad.steps, [steps, steps]);
  for (const row of output.expertLoad.tokens) assert.equal(row.reduce((a, b) => a + b, 0), routed);
});
