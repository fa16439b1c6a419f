/**
 * Groups in flight (step-flights.ts) under pressure: an engine core whose
 * runner takes two groups at once (a pipeline's pipelineGroups) gives every
 * sequence the tokens it gets with one forward at a time, with a KV pool
 * small enough to preempt (never a sequence whose group is in the air), and
 * with a KV loss reported by both groups in flight (handled once). The
 * in-process model sits behind a runner that answers each forward a few
 * milliseconds later, so groups really overlap.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TesseraError } from '../core/errors.js';
import type { Batch } from '../model/batch.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';
import { EngineCore, type EngineCoreOptions, type ModelRunner } from './engine-core.js';
import { samplingParams } from './sampler.js';
import type { SequenceOutput, SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-flight-faults-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 19 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

const OPTIONS: EngineCoreOptions = { kvCacheMib: 1, maxNumSeqs: 8, maxBatchTokens: 48 };

function request(length: number, salt: number, maxTokens: number, sampling: Parameters<typeof samplingParams>[0] = { temperature: 0 }): SequenceRequest {
  const promptIds = Array.from({ length }, (_, i) => 3 + ((i * 11 + salt * 17) % 400));
  return { promptIds, maxTokens, sampling: samplingParams(sampling), stop: [], ignoreEos: true };
}

const REQUESTS = [
  request(5, 1, 14),
  request(30, 2, 9, { temperature: 0.9, seed: 3 }),
  request(12, 3, 20, { temperature: 0.7, topK: 20, topP: 0.9, seed: 8 }),
  request(2, 4, 7),
  request(44, 5, 12, { temperature: 1, minP: 0.05, seed: 1 }),
  request(9, 6, 16, { temperature: 0.8, repetitionPenalty: 1.2, seed: 2 }),
];

/** The model behind a runner that answers a few milliseconds later and takes `depth` groups at once; it records the most in flight. */
function delayed(depth: number, fail?: (call: number) => Error | undefined): ModelRunner & { most: number } {
  let inFlight = 0;
  let calls = 0;
  const runner = {
    most: 0,
    pipelineGroups: depth,
    forwardBatch: async (batch: Batch): Promise<Float32Array> => {
      const call = calls++;
      inFlight++;
      runner.most = Math.max(runner.most, inFlight);
      try {
        // Computed now (steps run in the order sent, as on a mesh), answered later.
        const logits = await engine.transformer.forwardBatch(batch);
        await new Promise((resolve) => setTimeout(resolve, 3));
        const error = fail?.(call);
        if (error) throw error;
        return logits;
      } finally {
        inFlight--;
      }
    },
  };
  return runner;
}

async function run(target: EngineCore, requests: readonly SequenceRequest[]): Promise<number[][]> {
  const ids = requests.map((): number[] => []);
  requests.forEach((r, i) => target.add(i, r));
  while (target.hasWork) {
    const outputs: SequenceOutput[] = (await target.step()).outputs;
    for (const output of outputs) {
      assert.ok(!output.error, output.error?.message ?? '');
      ids[output.sequenceId].push(...output.ids);
    }
  }
  return ids;
}

test('with a pool too small for all, preemption never takes a sequence whose group is in flight', async () => {
  const small = { ...OPTIONS, kvCacheMib: 0, numBlocks: 9, blockSize: 16 };
  const expected = await run(new EngineCore(engine.transformer, engine.config, engine.tokenizer, small), REQUESTS);
  const runner = delayed(2);
  const target = new EngineCore(runner, engine.config, engine.tokenizer, small);
  assert.deepEqual(await run(target, REQUESTS), expected);
  assert.equal(runner.most, 2, 'two groups were in flight at once');
  assert.ok(target.scheduler.preemptions > 0, 'the pool was small enough to preempt');
  assert.equal(target.blocks.usedCount, 0);
});

test('a KV loss reported by both groups in flight is handled once, and every sequence recomputes to the same tokens', async () => {
  const expected = await run(new EngineCore(engine.transformer, engine.config, engine.tokenizer, OPTIONS), REQUESTS);
  const lost = new TesseraError('TESSERA_ERR_KV_LOST', 'the ranks re-sharded');
  const target = new EngineCore(delayed(2, (call) => (call === 4 || call === 5 ? lost : undefined)), engine.config, engine.tokenizer, OPTIONS);
  assert.deepEqual(await run(target, REQUESTS), expected);
  assert.equal(target.scheduler.preemptions, REQUESTS.length, 'every sequence was preempted once, not twice');
});
