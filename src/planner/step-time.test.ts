import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pipelineStages } from './layout.js';
import { catalogModel } from './model-catalog.js';
import { placeRanks } from './layout.js';
import { rankResources } from './rank-resources.js';
import { rooflineMs, stageStepTime, touchedExperts, type StageContext } from './step-time.js';
import { testDevice, TEST_SHAPE } from './test-hardware.js';

function context(tp = 1): StageContext {
  const hardware = testDevice();
  const layout = { tp, pp: 1, ep: 1, dp: 1 };
  const placement = placeRanks(hardware, layout);
  return { shape: TEST_SHAPE, weights: 'bf16', kv: 'bf16', layout, stage: pipelineStages(TEST_SHAPE, 1)[0], hardware, resources: rankResources(hardware, placement), ranksPerDevice: 1 };
}

// Per layer: q 1024×1024, k and v 1024×256, o 1024×1024, SwiGLU 3×1024×4096 = 14,680,064 parameters; 4 layers.
const LAYER_PARAMETERS = 1024 * 1024 * 2 + 2 * 1024 * 256 + 3 * 1024 * 4096;

test('one decode token streams every matrix once: bytes over bandwidth', () => {
  const time = stageStepTime(context(), { decodeTokens: 1, decodeContext: 0, prefillTokens: 0, prefillContext: 0, logitRows: 1 });
  const matmul = time.ops.find((op) => op.op === 'matmul');
  assert.equal(matmul?.bytes, 4 * LAYER_PARAMETERS * 2);
  assert.equal(matmul?.bound, 'memory');
  // 117.4 MB at 1,000 GB/s.
  assert.ok(Math.abs((matmul?.ms ?? 0) - (4 * LAYER_PARAMETERS * 2) / 1e9) < 1e-3);
});

test('a large prefill is compute-bound: 2 FLOPs per parameter per token over the rate', () => {
  const time = stageStepTime(context(), { decodeTokens: 0, decodeContext: 0, prefillTokens: 4096, prefillContext: 0, logitRows: 1 });
  const matmul = time.ops.find((op) => op.op === 'matmul');
  assert.equal(matmul?.bound, 'compute');
  assert.ok(Math.abs((matmul?.ms ?? 0) - (2 * 4096 * 4 * LAYER_PARAMETERS) / 100e9) < 1e-2);
});

test('tensor parallelism halves the bytes per rank and adds two all-reduces a layer', () => {
  const batch = { decodeTokens: 1, decodeContext: 0, prefillTokens: 0, prefillContext: 0, logitRows: 1 };
  const one = stageStepTime(context(1), batch);
  const two = stageStepTime(context(2), batch);
  assert.equal(two.ops[0].bytes, one.ops[0].bytes / 2);
  // 2 × 4 layers + the embedding's all-reduce, 10 µs each (the data is tiny), plus the logits' all-gather.
  assert.ok(two.networkMs > 0.09 && two.networkMs < 0.11, `${two.networkMs}`);
  assert.equal(one.networkMs, 0);
});

test('the roofline is the p-norm of memory and compute time: max for large p, the sum for p = 1', () => {
  assert.ok(Math.abs(rooflineMs(3, 4, 64) - 4) < 0.01);
  assert.equal(rooflineMs(3, 4, 1), 7);
  assert.equal(rooflineMs(3, 4, 2), 5);
  assert.equal(rooflineMs(0, 0, 2), 0);
});

test('a batch touches the experts its tokens route to: 1 − (1 − k/E)^T of them', () => {
  const mixtral = catalogModel('mixtral-8x7b');
  assert.equal(touchedExperts(mixtral, 8, 1), 2);
  assert.ok(Math.abs(touchedExperts(mixtral, 8, 8) - 8 * (1 - 0.75 ** 8)) < 1e-12);
  assert.ok(touchedExperts(mixtral, 8, 1000) > 7.999);
});
