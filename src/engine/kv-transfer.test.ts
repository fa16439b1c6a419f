/**
 * KV transfer between two engine cores in one process, the wire left out:
 * a prefill core streams a sequence's rows layer by layer and hands it off
 * after its first token; a decode core writes the rows into reserved blocks
 * and continues. The continuation must equal one colocated core's output
 * (ids, text, logprobs, finish) and the decode core's KV rows must be the
 * bits the colocated core computed — f32 and f16 caches, chunked prefill,
 * prefix-cache hits on either side, rows re-split from a tp 2 layout.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { KvDtype } from '../core/kv-dtype.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';
import { EngineCore } from './engine-core.js';
import type { KvFromEngine, KvRows, TransferId } from './kv-messages.js';
import { readKvRows } from './kv-rows.js';
import { KvTransfers } from './kv-transfers.js';
import { LayerTapRunner } from './layer-tap-runner.js';
import { samplingParams } from './sampler.js';
import type { SequenceOutput, SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-kv-transfer-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 9 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Side {
  core: EngineCore;
  kv: KvTransfers;
  messages: KvFromEngine[];
  rejected: string[];
}

function side(dtype: KvDtype, maxBatchTokens: number): Side {
  const messages: KvFromEngine[] = [];
  const rejected: string[] = [];
  let kv: KvTransfers | undefined;
  const runner = new LayerTapRunner(engine.transformer, { get active() { return kv?.active ?? false; }, afterLayer: (layer, batch) => kv?.afterLayer(layer, batch) });
  const core = new EngineCore(runner, engine.config, engine.tokenizer, { kvCacheMib: 2, kvCacheDtype: dtype, maxNumSeqs: 8, maxBatchTokens });
  kv = new KvTransfers(core, { send: (message) => messages.push(message), reject: (_, code, message) => rejected.push(`${code}: ${message}`) });
  return { core, kv, messages, rejected };
}

async function run(core: EngineCore, kv?: KvTransfers): Promise<SequenceOutput[]> {
  const outputs: SequenceOutput[] = [];
  while (core.hasWork) {
    const report = await core.step();
    outputs.push(...report.outputs);
    kv?.afterStep(report.outputs);
  }
  return outputs;
}

function collect(outputs: readonly SequenceOutput[]): { ids: number[]; text: string; logprobs: unknown[]; finish: unknown } {
  return { ids: outputs.flatMap((o) => o.ids), text: outputs.map((o) => o.text).join(''), logprobs: outputs.flatMap((o) => o.logprobs ?? []), finish: outputs.at(-1)?.finish };
}

/** Rows [0, positions) of every layer of a sequence's blocks, keys then values. */
function rowsOf(core: EngineCore, blocks: readonly number[], positions: number): (Float32Array | Uint16Array)[] {
  const table = Int32Array.from(blocks);
  const cache = core.blocks.cache;
  return cache.keys.flatMap((keys, layer) => [readKvRows(keys, table, 0, positions), readKvRows(cache.values[layer], table, 0, positions)]);
}

/** Splits a run by KV head into `parts` runs, as the ranks of a tp `parts` mesh would send it. */
function splitByHead(rows: KvRows, parts: number): KvRows[] {
  const headDim = engine.config.headDim;
  const per = rows.headCount / parts;
  return Array.from({ length: parts }, (_, part) => {
    const pick = (data: Float32Array | Uint16Array): Float32Array | Uint16Array => {
      const out = data instanceof Uint16Array ? new Uint16Array(rows.count * per * headDim) : new Float32Array(rows.count * per * headDim);
      for (let i = 0; i < rows.count; i++) out.set(data.subarray((i * rows.headCount + part * per) * headDim, (i * rows.headCount + (part + 1) * per) * headDim), i * per * headDim);
      return out;
    };
    return { ...rows, headStart: rows.headStart + part * per, headCount: per, keys: pick(rows.keys), values: pick(rows.values) };
  });
}

interface Case {
  request: SequenceRequest;
  dtype: KvDtype;
  /** Prefill budget per step (small: the prompt is cut into chunks). */
  chunk: number;
  /** Prompts each side has seen before (their prefix caches hold them). */
  warmPrefill?: SequenceRequest;
  warmDecode?: SequenceRequest;
  tpParts?: number;
  /** Positions the decode side should already hold. */
  skip?: number;
}

/** Prefill on one core, decode on another; returns both outputs, the colocated ones, and the two KV copies. */
async function disaggregate(c: Case): Promise<void> {
  const colocated = side(c.dtype, c.chunk);
  colocated.core.add(1, c.request);
  const firstStep: SequenceOutput[] = [];
  while (firstStep.length === 0) firstStep.push(...(await colocated.core.step()).outputs);
  const reference = colocated.core.sequence(1)!;
  const inputLength = c.request.promptIds.length + (c.request.resumeIds?.length ?? 0);
  const expectedRows = rowsOf(colocated.core, reference.blocks, inputLength);
  const expected = collect([...firstStep, ...(await run(colocated.core))]);

  const prefill = side(c.dtype, c.chunk);
  const decode = side(c.dtype, 64);
  if (c.warmPrefill) {
    prefill.core.add(90, c.warmPrefill);
    await run(prefill.core);
  }
  if (c.warmDecode) {
    decode.core.add(91, c.warmDecode);
    await run(decode.core);
  }
  const transfer = 't-1' as TransferId;
  decode.kv.apply({ type: 'reserve', transfer, tokens: [...c.request.promptIds, ...(c.request.resumeIds ?? [])] });
  decode.kv.add(7, c.request, { receive: { transfer } });
  const reserved = decode.messages.find((m) => m.type === 'reserved');
  assert.ok(reserved?.type === 'reserved' && reserved.blocks > 0, 'the decode core reserved blocks');
  assert.equal(reserved.skipPositions, c.skip ?? 0, 'positions the decode core holds from its prefix cache');
  prefill.kv.add(3, c.request, { send: { transfer, skipPositions: reserved.skipPositions } });
  const prefillOutputs = await run(prefill.core, prefill.kv);
  let sentRows = 0;
  for (const message of prefill.messages) {
    if (message.type === 'rows') {
      sentRows += message.count;
      assert.ok(message.from >= reserved.skipPositions, 'rows the decode side holds are not sent');
      for (const part of splitByHead(message, c.tpParts ?? 1)) decode.kv.apply({ ...part, type: 'rows' });
    } else if (message.type === 'handoff') decode.kv.apply({ type: 'commit', transfer, ids: message.ids });
  }
  assert.deepEqual(decode.rejected, []);
  assert.ok(decode.messages.some((m) => m.type === 'admitted'), 'the decode core admitted the sequence');
  assert.equal(sentRows, engine.config.numLayers * (inputLength - reserved.skipPositions), 'each layer sent each missing row once');
  const admitted = decode.core.sequence(7)!;
  assert.deepEqual(rowsOf(decode.core, admitted.blocks, inputLength), expectedRows, 'the decode core holds the colocated KV bits');
  const decoded = await run(decode.core);
  assert.deepEqual(collect([...prefillOutputs, ...decoded]), expected);
  assert.equal(prefill.core.hasWork, false, 'the prefill core let the sequence go');
}

const base: SequenceRequest = { promptIds: [], maxTokens: 24, sampling: samplingParams({ temperature: 0 }), stop: [], ignoreEos: true };
const prompt = (length: number, seed = 1): number[] => Array.from({ length }, (_, i) => 3 + ((i * 37 + seed * 11) % 500));

test('greedy: a 70-token prompt prefilled in 16-token chunks continues on the decode core bit for bit (f32)', async () => {
  await disaggregate({ request: { ...base, promptIds: prompt(70) }, dtype: 'f32', chunk: 16 });
});

test('sampled with penalties and logprobs, f16 cache, whole-prompt prefill', async () => {
  const request: SequenceRequest = { ...base, promptIds: prompt(41, 2), logprobs: 2, sampling: samplingParams({ temperature: 0.9, topP: 0.9, seed: 17, presencePenalty: 0.5, repetitionPenalty: 1.1 }) };
  await disaggregate({ request, dtype: 'f16', chunk: 128 });
});

test('prefix caches: the decode core holds the first two blocks (not sent), the prefill core all of them', async () => {
  const promptIds = prompt(53, 3);
  const shared = { ...base, promptIds: [...promptIds.slice(0, 40), 9, 9, 9], maxTokens: 2 };
  await disaggregate({ request: { ...base, promptIds }, dtype: 'f32', chunk: 32, warmDecode: shared, warmPrefill: { ...base, promptIds, maxTokens: 2 }, skip: 32 });
});

test('a resumed sequence: prefill of prompt + delivered ids, decode continues after them', async () => {
  await disaggregate({ request: { ...base, promptIds: prompt(20, 4), resumeIds: [44, 45, 46], maxTokens: 12 }, dtype: 'f32', chunk: 8 });
});

test('rows from a tp 2 layout (each run split by KV head) are re-split on arrival', async () => {
  await disaggregate({ request: { ...base, promptIds: prompt(37, 5) }, dtype: 'f16', chunk: 16, tpParts: 2 });
});

test('a sequence that ends at its first token is not handed off; a cancelled reservation frees its blocks', async () => {
  const prefill = side('f32', 64);
  const decode = side('f32', 64);
  const transfer = 't-2' as TransferId;
  const request = { ...base, promptIds: prompt(30, 6), maxTokens: 1 };
  const free = decode.core.blocks.freeCount;
  decode.kv.apply({ type: 'reserve', transfer, tokens: request.promptIds });
  decode.kv.add(1, request, { receive: { transfer } });
  assert.equal(decode.core.blocks.freeCount, free - 2);
  prefill.kv.add(1, request, { send: { transfer, skipPositions: 0 } });
  const outputs = await run(prefill.core, prefill.kv);
  assert.equal(outputs.at(-1)?.finish, 'length');
  assert.ok(prefill.messages.some((m) => m.type === 'export-ended'));
  assert.ok(!prefill.messages.some((m) => m.type === 'handoff'));
  decode.kv.cancel(1);
  assert.equal(decode.core.blocks.freeCount, free);
  decode.kv.apply({ type: 'commit', transfer, ids: [5] });
  assert.equal(decode.core.hasWork, false, 'a commit for a cancelled transfer is dropped');
});

test('an aborted transfer fails its sequence with a retryable code and frees its blocks', () => {
  const decode = side('f32', 64);
  const transfer = 't-3' as TransferId;
  const free = decode.core.blocks.freeCount;
  decode.kv.apply({ type: 'reserve', transfer, tokens: prompt(18) });
  decode.kv.add(4, { ...base, promptIds: prompt(18) }, { receive: { transfer } });
  decode.kv.apply({ type: 'abort', transfer, message: 'the prefill replica went away' });
  assert.deepEqual(decode.rejected, ['TESSERA_ERR_KV_TRANSFER_FAILED: the prefill replica went away']);
  assert.equal(decode.core.blocks.freeCount, free);
});
