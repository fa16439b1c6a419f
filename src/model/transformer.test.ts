import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Backend } from '../backend/backend.js';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { testWebGpuBackend } from '../backend/webgpu/test-device.js';
import { KvCache } from '../engine/kv-cache.js';
import { Llama2cStore } from '../format/llama2c.js';
import { fixture } from '../testing/fixtures.js';
import type { Batch } from './batch.js';
import type { ModelConfig } from '../core/model-config.js';
import { configFromLlama2c } from './config-from-llama2c.js';
import { loadTransformerWeights } from './transformer-weights.js';
import { Transformer } from './transformer.js';

/** stories260K on a backend; close `store` when done. */
function storiesTransformer(path: string, backend: Backend): { store: Llama2cStore; config: ModelConfig; model: Transformer } {
  const store = new Llama2cStore(path);
  const config = configFromLlama2c(store.header);
  return { store, config, model: new Transformer(config, loadTransformerWeights(store, config, backend), backend) };
}

function positions(start: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => start + i);
}

// The reference backend, and the WebGPU one (whose steps run as one submission) where there is an adapter.
const gpu = testWebGpuBackend();
const backends: [string, Backend | string][] = [['reference', new ReferenceBackend()], ['webgpu', gpu]];

for (const [name, backend] of backends) {
const skip = typeof backend === 'string' ? backend : false;

test(`${name}: a sequence gives the same logits alone and batched with others, prefilled whole or in chunks`, { skip }, async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path || typeof backend === 'string') return;
  const { store, config, model } = storiesTransformer(path, backend);
  const cache = new KvCache(config, 64);
  const vocab = config.vocabSize;
  const first = [1, 403, 407, 261, 378, 432, 383];
  const second = [1, 376, 298, 315];

  const alone = cache.allocate(first.length);
  const aloneLogits = await model.forward(Int32Array.from(first), positions(0, first.length), alone, 'all');

  // The second sequence first prefills 2 tokens alone, then its last 2 share a batch with all of the first.
  const a = cache.allocate(first.length);
  const b = cache.allocate(second.length);
  await model.forward(Int32Array.from(second.slice(0, 2)), positions(0, 2), b, 'none');
  const batch: Batch = {
    ids: Int32Array.from([...second.slice(2), ...first]),
    segments: [
      { kv: b, start: 0, positions: positions(2, 2), logits: 'last' },
      { kv: a, start: 2, positions: positions(0, first.length), logits: 'all' },
    ],
  };
  const batched = await model.forwardBatch(batch);
  assert.equal(batched.length, (1 + first.length) * vocab);
  assert.deepEqual(batched.subarray(vocab), aloneLogits);

  const secondAlone = await model.forward(Int32Array.from(second), positions(0, second.length), cache.allocate(second.length), 'last');
  assert.deepEqual(batched.subarray(0, vocab), secondAlone);
  store.close();
});

test(`${name}: sequences of two KV caches in one batch give the logits each gives alone`, { skip }, async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path || typeof backend === 'string') return;
  const { store, config, model } = storiesTransformer(path, backend);
  const vocab = config.vocabSize;
  const first = [1, 403, 407, 261, 378];
  const second = [1, 376, 298, 315];
  const alone = async (ids: number[]) => model.forward(Int32Array.from(ids), positions(0, ids.length), new KvCache(config, 4).allocate(ids.length), 'all');

  // The first sequence has 3 tokens cached in one cache; the second starts in another; the batch interleaves them.
  const [cacheA, cacheB] = [new KvCache(config, 4), new KvCache(config, 4)];
  const a = cacheA.allocate(first.length);
  const b = cacheB.allocate(second.length);
  await model.forward(Int32Array.from(first.slice(0, 3)), positions(0, 3), a, 'none');
  const batched = await model.forwardBatch({
    ids: Int32Array.from([second[0], ...first.slice(3), ...second.slice(1)]),
    segments: [
      { kv: b, start: 0, positions: positions(0, 1), logits: 'all' },
      { kv: a, start: 1, positions: positions(3, 2), logits: 'all' },
      { kv: b, start: 3, positions: positions(1, 3), logits: 'all' },
    ],
  });
  const [firstAlone, secondAlone] = [await alone(first), await alone(second)];
  assert.deepEqual(batched.subarray(0, vocab), secondAlone.subarray(0, vocab));
  assert.deepEqual(batched.subarray(vocab, 3 * vocab), firstAlone.subarray(3 * vocab));
  assert.deepEqual(batched.subarray(3 * vocab), secondAlone.subarray(vocab));
  store.close();
});
}
