/**
 * A core over a runner that takes several groups at once (as a pp mesh
 * does): groups of disjoint sequences stay in flight together, outputs are
 * the bits of the one-group core, and a sequence cancelled while its group
 * is in flight keeps its blocks until the group lands.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { synthesize } from '../synth/synthesize.js';
import type { Batch } from '../model/batch.js';
import { Engine } from './engine.js';
import { EngineCore, type ModelRunner } from './engine-core.js';
import { samplingParams } from './sampler.js';
import type { SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-flights-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 5 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The real transformer, answering each forward a few milliseconds later; records how many were in flight at once. */
class StagedRunner implements ModelRunner {
  inFlight = 0;
  mostInFlight = 0;
  readonly batchSequences: number[] = [];
  constructor(readonly pipelineGroups: number) {}
  async forwardBatch(batch: Batch): Promise<Float32Array> {
    this.inFlight++;
    this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
    this.batchSequences.push(batch.segments.length);
    try {
      const logits = await engine.transformer.forwardBatch(batch);
      await new Promise((resolve) => setTimeout(resolve, 3));
      return logits;
    } finally {
      this.inFlight--;
    }
  }
}

function request(salt: number, maxTokens: number, sampling: Parameters<typeof samplingParams>[0] = { temperature: 0 }): SequenceRequest {
  const promptIds = Array.from({ length: 3 + salt * 5 }, (_, i) => 3 + ((i * 11 + salt * 17) % 400));
  return { promptIds, maxTokens, sampling: samplingParams(sampling), stop: [], ignoreEos: true };
}

const requests = (): SequenceRequest[] => [
  request(1, 12),
  request(2, 9, { temperature: 0.9, topK: 20, seed: 7 }),
  request(3, 14),
  request(4, 5, { temperature: 0.7, topP: 0.8, seed: 3 }),
  request(5, 11),
  request(6, 8),
];

async function run(runner: ModelRunner, cancelAfter?: { sequence: number; steps: number }): Promise<{ ids: number[][]; finish: (string | undefined)[]; core: EngineCore }> {
  const core = new EngineCore(runner, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 64, maxBatchTokens: 64 });
  const list = requests();
  list.forEach((r, i) => core.add(i, r));
  const ids = list.map(() => [] as number[]);
  const finish: (string | undefined)[] = list.map(() => undefined);
  for (let steps = 0; core.hasWork; steps++) {
    if (cancelAfter && steps === cancelAfter.steps) core.cancel(cancelAfter.sequence);
    for (const output of (await core.step()).outputs) {
      ids[output.sequenceId].push(...output.ids);
      finish[output.sequenceId] ??= output.finish;
    }
  }
  return { ids, finish, core };
}

test('two groups in flight give the ids of one group, with both groups in the air at once', async () => {
  const one = await run(new StagedRunner(1));
  const runner = new StagedRunner(2);
  const two = await run(runner);
  assert.deepEqual(two.ids, one.ids);
  assert.equal(runner.mostInFlight, 2);
  // Six sequences, two groups: a group holds about half of them.
  assert.ok(Math.max(...runner.batchSequences) <= 3, `group sizes ${runner.batchSequences.join(',')}`);
  assert.equal(two.core.blocks.usedCount, 0, 'every block released');
});

test('a sequence cancelled while its group is in flight stops; the others keep their ids; no block leaks', async () => {
  const one = await run(new StagedRunner(1));
  const cancelled = await run(new StagedRunner(2), { sequence: 2, steps: 3 });
  assert.equal(cancelled.finish[2], 'cancelled');
  for (const i of [0, 1, 3, 4, 5]) assert.deepEqual(cancelled.ids[i], one.ids[i], `sequence ${i}`);
  assert.deepEqual(cancelled.ids[2], one.ids[2].slice(0, cancelled.ids[2].length));
  assert.equal(cancelled.core.blocks.usedCount, 0, 'every block released');
});
