import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createBackend } from '../backend/native/select-backend.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';
import { EngineCore, type EngineCoreOptions } from './engine-core.js';
import { samplingParams } from './sampler.js';
import type { SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;
let path: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-core-'));
  path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 11 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function core(options: Partial<EngineCoreOptions> = {}): EngineCore {
  return new EngineCore(engine.transformer, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 64, maxBatchTokens: 64, ...options });
}

function request(promptIds: number[], maxTokens: number, sampling: Parameters<typeof samplingParams>[0] = { temperature: 0 }): SequenceRequest {
  return { promptIds, maxTokens, sampling: samplingParams(sampling), stop: [], ignoreEos: true };
}

/** Runs requests on one core, all queued at once; returns each one's generated ids. */
async function runAll(target: EngineCore, requests: SequenceRequest[]): Promise<number[][]> {
  const ids = requests.map(() => [] as number[]);
  requests.forEach((r, i) => target.add(i, r));
  let finished = 0;
  while (target.hasWork) {
    const report = await target.step();
    for (const output of report.outputs) {
      ids[output.sequenceId].push(...output.ids);
      if (output.finish) finished++;
    }
  }
  assert.equal(finished, requests.length);
  return ids;
}

function prompt(length: number, salt: number): number[] {
  return Array.from({ length }, (_, i) => 3 + ((i * 7 + salt * 13) % 500));
}

const mixed = (): SequenceRequest[] => [
  request(prompt(5, 1), 12),
  request(prompt(40, 2), 8),
  request(prompt(17, 3), 20),
  request(prompt(1, 4), 6),
  request(prompt(70, 5), 10),
  request(prompt(33, 6), 15, { temperature: 0.8, topP: 0.9, seed: 42 }),
  request(prompt(16, 7), 9, { temperature: 1.2, topK: 20, seed: 7 }),
];

test('a batch gives every sequence the tokens it gets alone, with chunked prefill', async () => {
  const requests = mixed();
  const batched = await runAll(core({ maxBatchTokens: 24 }), requests);
  for (let i = 0; i < requests.length; i++) {
    const [alone] = await runAll(core({ maxBatchTokens: 512 }), [requests[i]]);
    assert.deepEqual(batched[i], alone, `sequence ${i}`);
    assert.equal(alone.length, requests[i].maxTokens);
  }
});

test('a prefix-cache hit shares blocks and changes no token', async () => {
  const shared = prompt(50, 9);
  const target = core();
  const [first] = await runAll(target, [request(shared, 10)]);
  const second = request([...shared, 77, 78], 10);
  let cached = -1;
  target.add(100, second);
  const ids: number[] = [];
  while (target.hasWork) {
    for (const output of (await target.step()).outputs) {
      ids.push(...output.ids);
      cached = output.cachedPromptTokens;
    }
  }
  assert.equal(cached, 48, 'three full blocks of 16 come from the cache');
  const [alone] = await runAll(core(), [second]);
  assert.deepEqual(ids, alone);
  assert.ok(target.blocks.hitRate > 0);
  assert.equal(first.length, 10);
});

test('a full KV cache preempts the newest sequences and recomputes them identically', async () => {
  const requests = mixed().map((r) => ({ ...r, maxTokens: Math.min(r.maxTokens, 20) }));
  // 16 KiB blocks: 10 blocks hold 160 tokens, far less than the batch needs at once.
  const small = core({ kvCacheMib: 160 / 1024, maxBatchTokens: 32 });
  const batched = await runAll(small, requests);
  assert.ok(small.scheduler.preemptions > 0, 'the cache was too small, so someone was preempted');
  for (let i = 0; i < requests.length; i++) {
    const [alone] = await runAll(core(), [requests[i]]);
    assert.deepEqual(batched[i], alone, `sequence ${i}`);
  }
  assert.equal(small.blocks.usedCount, 0, 'all blocks are free at the end');
});

test('cancel frees the blocks at once and reports the sequence cancelled', async () => {
  const target = core();
  target.add(1, request(prompt(60, 1), 50));
  await target.step();
  assert.ok(target.blocks.usedCount > 0);
  target.cancel(1);
  assert.equal(target.blocks.usedCount, 0);
  const report = await target.step();
  assert.equal(report.outputs[0].finish, 'cancelled');
  assert.equal(target.hasWork, false);
});

test('requests beyond the context are refused with a coded error', () => {
  const target = core({ kvCacheMib: 1 });
  assert.throws(() => target.add(1, request(prompt(500, 1), 100)), { code: 'TESSERA_ERR_CONTEXT_OVERFLOW' });
  assert.throws(() => target.add(2, request([], 1)), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
  assert.throws(() => target.add(3, request([1, 99999], 1)), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
});

test('a long prompt is prefilled in chunks while a running stream gets a token every step', async () => {
  const target = core({ maxBatchTokens: 16, maxNumSeqs: 2 });
  target.add(1, request(prompt(3, 1), 40));
  await target.step(); // prefill of the short prompt, first token
  target.add(2, request(prompt(120, 2), 2));
  target.add(3, request(prompt(5, 3), 2));
  let steps = 0;
  let longFirstToken = -1;
  while (target.hasWork && longFirstToken < 0) {
    const report = await target.step();
    steps++;
    assert.ok(report.stats.batchTokens <= 16, 'the step stays within its token budget');
    assert.ok(report.stats.running <= 2, 'no more than max-num-seqs run at once');
    assert.ok(report.outputs.some((output) => output.sequenceId === 1 && output.ids.length === 1), `step ${steps} decoded the running stream`);
    if (report.outputs.some((output) => output.sequenceId === 2 && output.ids.length === 1)) longFirstToken = steps;
  }
  // 120 prompt tokens at 15 per step (one token of the budget goes to the stream).
  assert.equal(longFirstToken, 8);
});

test('sequences sharing a prompt wait for the first prefill and reuse its blocks', async () => {
  const target = core({ maxBatchTokens: 64 });
  const shared = prompt(50, 4);
  const requests = [request(shared, 5), request(shared, 5, { temperature: 1, seed: 3 }), request([...shared, 9], 5), request(prompt(40, 5), 5)];
  const cached = new Map<number, number>();
  const ids = requests.map(() => [] as number[]);
  requests.forEach((r, i) => target.add(i, r));
  while (target.hasWork) {
    for (const output of (await target.step()).outputs) {
      ids[output.sequenceId].push(...output.ids);
      cached.set(output.sequenceId, output.cachedPromptTokens);
    }
  }
  assert.deepEqual([...cached.entries()].sort((a, b) => a[0] - b[0]), [[0, 0], [1, 48], [2, 48], [3, 0]]);
  for (let i = 0; i < requests.length; i++) assert.deepEqual(ids[i], (await runAll(core(), [requests[i]]))[0], `sequence ${i}`);
  // Without prefix caching (a runner that keeps KV elsewhere) nothing is shared and nothing changes.
  const plain = core({ prefixCaching: false });
  assert.deepEqual(await runAll(plain, requests), ids);
  assert.equal(plain.blocks.hitTokens, 0);
});

test('with the default backend (native when built) a batch also gives each sequence its tokens alone', async () => {
  const auto = await Engine.open(path, { backend: createBackend('auto', { threads: 2 }, () => undefined) });
  const make = (maxBatchTokens: number): EngineCore => new EngineCore(auto.transformer, auto.config, auto.tokenizer, { kvCacheMib: 1, maxNumSeqs: 64, maxBatchTokens });
  const requests = mixed();
  const batched = await runAll(make(24), requests);
  for (let i = 0; i < requests.length; i++) assert.deepEqual(batched[i], (await runAll(make(512), [requests[i]]))[0], `sequence ${i} on ${auto.backend.name}`);
});

test('a step that throws fails only the sequences of its batch; the queue goes on', async () => {
  const poison = 499;
  // Fault injection around the real model: any batch holding the poison token fails.
  const runner = {
    forwardBatch: async (batch: Parameters<typeof engine.transformer.forwardBatch>[0]) => {
      if (batch.ids.includes(poison)) throw new Error('injected fault');
      return engine.transformer.forwardBatch(batch);
    },
  };
  const target = new EngineCore(runner, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 1, maxBatchTokens: 64 });
  target.add(0, request([5, poison, 6], 4));
  target.add(1, request(prompt(9, 1), 6));
  const outputs = [];
  while (target.hasWork) outputs.push(...(await target.step()).outputs);
  const failed = outputs.filter((output) => output.finish === 'error');
  assert.deepEqual(failed.map((output) => [output.sequenceId, output.error?.message]), [[0, 'injected fault']]);
  const survivor = outputs.filter((output) => output.sequenceId === 1).flatMap((output) => output.ids);
  assert.deepEqual(survivor, (await runAll(core(), [request(prompt(9, 1), 6)]))[0]);
  assert.equal(target.blocks.usedCount, 0);
});
