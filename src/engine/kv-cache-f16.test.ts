/**
 * An f16 KV cache keeps DESIGN §4: a sequence's logits do not depend on the
 * batch it shares or on how its prompt was chunked, bit for bit, on every
 * backend; it changes the logits only by the half rounding of keys and
 * values; and a KV budget holds twice the blocks.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Backend } from '../backend/backend.js';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { NativeBackend } from '../backend/native/native-backend.js';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { isTesseraError } from '../core/errors.js';
import type { KvDtype } from '../core/kv-dtype.js';
import { synthesize } from '../synth/synthesize.js';
import { Transformer } from '../model/transformer.js';
import { loadTransformerWeights } from '../model/transformer-weights.js';
import { Engine } from './engine.js';
import { EngineCore } from './engine-core.js';
import { KvCache } from './kv-cache.js';
import { openModelFiles } from './model-files.js';
import { samplingParams } from './sampler.js';
import type { SequenceRequest } from './sequence.js';

let dir: string;
let path: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-kv16-'));
  path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 13 });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function backends(): { name: string; make: () => Backend }[] {
  const list = [{ name: 'reference', make: (): Backend => new ReferenceBackend() }];
  if (loadNativeAddon().ok) list.push({ name: 'native', make: (): Backend => new NativeBackend({ threads: 2 }) });
  return list;
}

function openModel(backend: Backend): Transformer {
  const files = openModelFiles(path);
  try {
    return new Transformer(files.config, loadTransformerWeights(files.store, files.config, backend), backend);
  } finally {
    files.store.close();
  }
}

function positions(start: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => start + i);
}

const first = Array.from({ length: 37 }, (_, i) => 3 + ((i * 11) % 300));
const second = Array.from({ length: 21 }, (_, i) => 5 + ((i * 17) % 300));

/** Logits of every position of `first`, prefilled whole on its own cache. */
async function alone(model: Transformer, dtype: KvDtype): Promise<Float32Array> {
  const kv = new KvCache(model.config, 8, 16, dtype).allocate(first.length);
  return model.forward(Int32Array.from(first), positions(0, first.length), kv, 'all');
}

for (const { name, make } of backends()) {
  test(`f16 KV (${name}): a sequence's logits alone, chunked, and batched with another are bitwise equal`, async () => {
    const model = openModel(make());
    const expected = await alone(model, 'f16');
    const vocab = model.config.vocabSize;

    // Chunked prefill: 10, 1, then the rest.
    const chunkedKv = new KvCache(model.config, 8, 16, 'f16').allocate(first.length);
    const parts: Float32Array[] = [];
    for (const [start, end] of [[0, 10], [10, 11], [11, first.length]]) {
      parts.push(await model.forward(Int32Array.from(first.slice(start, end)), positions(start, end - start), chunkedKv, 'all'));
    }
    assert.deepEqual(Float32Array.from(parts.flatMap((part) => [...part])), expected, 'chunked prefill');

    // Batched: the other sequence has 5 tokens cached, then its rest shares a step with all of `first`.
    const cache = new KvCache(model.config, 16, 16, 'f16');
    const a = cache.allocate(first.length);
    const b = cache.allocate(second.length);
    await model.forward(Int32Array.from(second.slice(0, 5)), positions(0, 5), b, 'none');
    const batched = await model.forwardBatch({
      ids: Int32Array.from([...second.slice(5), ...first]),
      segments: [
        { kv: b, start: 0, positions: positions(5, second.length - 5), logits: 'last' },
        { kv: a, start: second.length - 5, positions: positions(0, first.length), logits: 'all' },
      ],
    });
    assert.deepEqual(batched.subarray(vocab), expected, 'batched');
  });

  test(`f16 KV (${name}): logits differ from f32 KV only by the half rounding of keys and values`, async () => {
    const model = openModel(make());
    const [f32, f16] = [await alone(model, 'f32'), await alone(model, 'f16')];
    let maxDelta = 0;
    let maxLogit = 0;
    for (let i = 0; i < f32.length; i++) {
      maxDelta = Math.max(maxDelta, Math.abs(f32[i] - f16[i]));
      maxLogit = Math.max(maxLogit, Math.abs(f32[i]));
    }
    assert.ok(maxDelta > 0, 'the f16 cache is in use (some logit moved)');
    assert.ok(maxDelta < 1e-2 * maxLogit, `max |Δ| ${maxDelta} against logits up to ${maxLogit}`);
  });
}

function request(promptIds: number[], maxTokens: number): SequenceRequest {
  return { promptIds, maxTokens, sampling: samplingParams({ temperature: 0 }), stop: [], ignoreEos: true };
}

test('the engine core with an f16 KV cache: twice the blocks in a budget, and batched sequences get their alone tokens', async () => {
  const engine = await Engine.open(path, { kvCacheDtype: 'f16' });
  const core = (maxBatchTokens: number, kvCacheDtype: KvDtype = 'f16') =>
    new EngineCore(engine.transformer, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 8, maxBatchTokens, kvCacheDtype });
  assert.equal(core(64).blocks.numBlocks, 2 * core(64, 'f32').blocks.numBlocks);
  assert.equal(core(64).blocks.cache.keys[0].dtype, 'f16');
  const requests = [request(first, 6), request(second, 9), request(first.slice(0, 3), 4)];
  const run = async (target: EngineCore, list: SequenceRequest[]): Promise<number[][]> => {
    const ids = list.map(() => [] as number[]);
    list.forEach((r, i) => target.add(i, r));
    while (target.hasWork) for (const output of (await target.step()).outputs) ids[output.sequenceId].push(...output.ids);
    return ids;
  };
  // Chunked prefill (8 tokens a step) with the others, against each alone in one piece.
  const batched = await run(core(8), requests);
  for (let i = 0; i < requests.length; i++) assert.deepEqual(batched[i], (await run(core(512), [requests[i]]))[0], `sequence ${i}`);
  // Engine.generate on the f16 cache gives the core's tokens.
  const generated: number[] = [];
  for await (const token of engine.generate({ promptIds: first, maxTokens: 6, sampling: { temperature: 0 }, ignoreEos: true })) if (token.id >= 0) generated.push(token.id);
  assert.deepEqual(generated, batched[0]);
});

test('a KV dtype other than f32 or f16 is a coded error naming the choices', async () => {
  const engine = await Engine.open(path);
  const coded = (e: unknown) => isTesseraError(e) && e.code === 'TESSERA_ERR_INVALID_ARGUMENT' && /f32, f16/.test(e.message);
  assert.throws(() => new EngineCore(engine.transformer, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 1, maxBatchTokens: 8, kvCacheDtype: 'q8_0' as KvDtype }), coded);
  await assert.rejects(Engine.open(path, { kvCacheDtype: 'bf16' as KvDtype }), coded);
});
