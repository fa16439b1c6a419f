/**
 * PLAN contract 2: a model runner whose KV went away (a mesh re-sharded)
 * throws TESSERA_ERR_KV_LOST; the engine core recomputes every running
 * sequence and forgets its prefix cache, and no token changes. A step
 * refused for one segment fails that sequence alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { SegmentError, TesseraError } from '../core/errors.js';
import type { Batch } from '../model/batch.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';
import { EngineCore, type ModelRunner } from './engine-core.js';
import { samplingParams } from './sampler.js';
import type { SequenceOutput, SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-kv-lost-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 5 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** The engine's transformer; on the calls in `faults` it first does what the fault says, then throws. */
function faultyRunner(core: () => EngineCore, faults: Map<number, (batch: Batch) => Error>): ModelRunner {
  let calls = 0;
  return {
    forwardBatch: async (batch) => {
      const fault = faults.get(++calls);
      if (fault) throw fault(batch);
      return engine.transformer.forwardBatch(batch);
    },
  };
}

/** What a re-shard does to the core's KV: every key and value is garbage now. */
function wipeKv(target: EngineCore): void {
  for (const pool of [...target.blocks.cache.keys, ...target.blocks.cache.values]) pool.data.fill(0x3c00);
}

const requests = (): SequenceRequest[] =>
  Array.from({ length: 6 }, (_, i) => ({
    // A shared 32-token prefix: the prefix cache has blocks to offer (and must forget them).
    promptIds: [...Array.from({ length: 32 }, (_, t) => 3 + ((t * 11) % 400)), ...Array.from({ length: 3 + i }, (_, t) => 7 + i * 5 + t)],
    maxTokens: 14 + i,
    sampling: samplingParams(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.9, seed: 40 + i }),
    stop: [],
    ignoreEos: true,
  }));

async function run(runner: (core: () => EngineCore) => ModelRunner): Promise<{ ids: number[][]; outputs: SequenceOutput[] }> {
  let target: EngineCore | undefined;
  target = new EngineCore(runner(() => target!), engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 8, maxBatchTokens: 48 });
  const list = requests();
  list.forEach((request, i) => target!.add(i, request));
  const ids = list.map(() => [] as number[]);
  const outputs: SequenceOutput[] = [];
  while (target.hasWork) {
    for (const output of (await target.step()).outputs) {
      outputs.push(output);
      ids[output.sequenceId].push(...output.ids);
    }
  }
  return { ids, outputs };
}

test('KV lost mid-run: every running sequence is recomputed, the prefix cache forgotten, and the tokens do not change', async () => {
  const expected = await run(() => engine.transformer);
  let lostAt = 0;
  const faults = new Map<number, (batch: Batch) => Error>();
  const result = await run((core) => {
    // Once prefill is done and decoding runs: the ranks' KV (here the core's own pool) is gone.
    faults.set(9, () => {
      lostAt = core().scheduler.running.length;
      wipeKv(core());
      return new TesseraError('TESSERA_ERR_KV_LOST', 'the mesh re-sharded');
    });
    return faultyRunner(core, faults);
  });
  assert.ok(lostAt > 1, 'sequences were running when the KV was lost');
  assert.deepEqual(result.ids, expected.ids);
  assert.ok(result.outputs.every((output) => output.error === undefined));
});

test('a step refused for one segment fails that sequence alone; the others go on unchanged', async () => {
  const expected = await run(() => engine.transformer);
  const result = await run((core) => faultyRunner(core, new Map([[6, () => new SegmentError('TESSERA_ERR_INVALID_ARGUMENT', 'block 9 is outside the pool', 1)]])));
  const failed = result.outputs.filter((output) => output.error);
  assert.equal(failed.length, 1);
  assert.equal(failed[0].error?.code, 'TESSERA_ERR_INVALID_ARGUMENT');
  for (let i = 0; i < expected.ids.length; i++) {
    if (i !== failed[0].sequenceId) assert.deepEqual(result.ids[i], expected.ids[i], `sequence ${i}`);
  }
});
