/**
 * Expert parallelism over an in-process mesh: every rank holds only its
 * experts, tokens travel by all-to-all, and the logits and greedy tokens
 * are bit-identical to one rank's for ep in {1, 2, 4}.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { isTesseraError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { KvCache } from '../engine/kv-cache.js';
import { openModelFiles } from '../engine/model-files.js';
import { Communicator } from '../parallel/collectives.js';
import { inProcessMesh } from '../parallel/in-process-transport.js';
import { ExpertGroup } from '../parallel/expert-group.js';
import { synthesize } from '../synth/synthesize.js';
import { fixture } from '../testing/fixtures.js';
import { ExpertLoad } from './moe-expert-load.js';
import { createExpertParallelFeedForwards } from './moe-expert-parallel.js';
import { expertsOf, homeTokens, placeExperts } from './moe-placement.js';
import { SINGLE_RANK } from './tensor-parallel.js';
import { loadTransformerWeights } from './transformer-weights.js';
import { Transformer } from './transformer.js';

interface RankModel {
  transformer: Transformer;
  load: ExpertLoad;
  bytesRead: number;
}

function openRanks(path: string, ep: number): RankModel[] {
  return inProcessMesh(ep).map((transport) => {
    const files = openModelFiles(path);
    const placement = placeExperts(files.config.moe!.numExperts, ep);
    const backend = new ReferenceBackend();
    const weights = loadTransformerWeights(files.store, files.config, backend, undefined, (expert) => placement.ownerOf[expert] === transport.rank);
    const bytesRead = files.store.bytesRead;
    files.store.close();
    const group = new ExpertGroup(new Communicator(transport));
    const load = new ExpertLoad(files.config.numLayers);
    const feedForwards = createExpertParallelFeedForwards(weights, backend, files.config, placement, group, load);
    return { transformer: new Transformer(files.config, weights, backend, SINGLE_RANK, feedForwards), load, bytesRead };
  });
}

/** Prompt logits ('all') then `steps` greedy tokens, every rank in lockstep; rank 0's results (all ranks must agree). */
async function runRanks(ranks: RankModel[], prompt: number[], steps: number): Promise<{ logits: Float32Array; ids: number[] }> {
  const config = ranks[0].transformer.config;
  const sequences = ranks.map(() => new KvCache(config, Math.ceil((prompt.length + steps) / 16) + 1).allocate(prompt.length + steps));
  const positions = Int32Array.from(prompt.keys());
  const prefill = await Promise.all(ranks.map((rank, i) => rank.transformer.forward(Int32Array.from(prompt), positions, sequences[i], 'all')));
  prefill.forEach((logits) => assert.deepEqual(logits, prefill[0]));
  const vocab = config.vocabSize;
  let row = prefill[0].subarray((prompt.length - 1) * vocab);
  const ids: number[] = [];
  for (let step = 0; step < steps; step++) {
    const id = row.indexOf(Math.max(...row));
    ids.push(id);
    const position = prompt.length + step;
    const rows = await Promise.all(ranks.map((rank, i) => rank.transformer.forward(Int32Array.of(id), Int32Array.of(position), sequences[i], 'last')));
    rows.forEach((r) => assert.deepEqual(r, rows[0]));
    row = rows[0];
  }
  return { logits: prefill[0], ids };
}

async function assertSameAsOneRank(path: string, prompt: number[], steps: number, eps: number[]): Promise<void> {
  const engine = await Engine.open(path);
  const expectedLogits = await engine.logits(prompt);
  const expectedIds = (await engine.complete({ promptIds: prompt, maxTokens: steps, ignoreEos: true })).ids;
  for (const ep of eps) {
    const ranks = openRanks(path, ep);
    const { logits, ids } = await runRanks(ranks, prompt, steps);
    assert.deepEqual(logits, expectedLogits, `ep ${ep}: prompt logits`);
    assert.deepEqual(ids, expectedIds, `ep ${ep}: greedy ids`);
  }
}

test('qwen_moe_tiny (shared expert, 4 experts): ep 1, 2, 4 give the logits and greedy ids of one rank, bit for bit', async (t) => {
  const path = fixture(t, 'moe-fixtures/qwen_moe_tiny.safetensors');
  if (!path) return;
  await assertSameAsOneRank(path, [38, 14, 39, 13, 3], 6, [1, 2, 4]);
});

test('synthetic Qwen3-MoE GGUF (8 experts, Q8_0): ep 2 and 4 give the tokens of one rank, bit for bit', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'tessera-ep-')), 'qwen3-moe.gguf');
  await synthesize({ preset: 'tiny-qwen3-moe', arch: 'qwen3_moe', dtype: 'q8_0', out: path, format: 'gguf', seed: 3 });
  const engine = await Engine.open(path);
  const prompt = engine.tokenizer.encode('A small robot reads a book', { addBos: true });
  await assertSameAsOneRank(path, prompt, 8, [2, 4]);
});

test('each rank reads only its own experts and records only their token counts', async (t) => {
  const path = fixture(t, 'moe-fixtures/mixtral_scale.safetensors');
  if (!path) return;
  const one = openRanks(path, 1)[0];
  const ranks = openRanks(path, 4);
  const expertBytes = one.bytesRead - ranks[0].bytesRead;
  // 8 experts over 4 ranks: each rank skips 6 of 8 experts' bytes.
  for (const rank of ranks) assert.equal(one.bytesRead - rank.bytesRead, expertBytes);
  assert.ok(expertBytes > 0);
  await runRanks(ranks, [28, 28, 10, 13, 27], 0);
  const placement = placeExperts(8, 4);
  let total = 0;
  ranks.forEach((rank, r) => {
    const counts = rank.load.layer(0);
    counts.forEach((count, expert) => {
      if (placement.ownerOf[expert] !== r) assert.equal(count, 0);
    });
    total += counts.reduce((a, b) => a + b, 0);
  });
  assert.equal(total, 5 * 2);
});

test('placement: contiguous near-equal runs of experts, home tokens cover the batch once', () => {
  const placement = placeExperts(8, 3);
  assert.deepEqual([...placement.ownerOf], [0, 0, 1, 1, 1, 2, 2, 2]);
  assert.deepEqual(expertsOf(placement, 1), [2, 3, 4]);
  assert.deepEqual([homeTokens(5, 2, 0), homeTokens(5, 2, 1)], [[0, 2], [2, 5]]);
  assert.deepEqual(homeTokens(1, 4, 0), [0, 0]);
  assert.deepEqual(homeTokens(1, 4, 3), [0, 1]);
  assert.throws(() => placeExperts(4, 8), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_SHARD_CONSTRAINT');
});
