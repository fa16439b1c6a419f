/**
 * The resume form (SequenceRequest.resumeIds): a run cut after any number of
 * delivered tokens and resumed from them continues with exactly the ids,
 * text and logprobs the uncut run produced — what a router relies on when it
 * moves a request to another replica.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Batch } from '../model/batch.js';
import { synthesize } from '../synth/synthesize.js';
import { Engine } from './engine.js';
import { EngineCore, type ModelRunner } from './engine-core.js';
import { samplingParams, type SamplingParams } from './sampler.js';
import type { SequenceOutput, SequenceRequest } from './sequence.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-resume-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 5 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function core(runner: ModelRunner = engine.transformer): EngineCore {
  return new EngineCore(runner, engine.config, engine.tokenizer, { kvCacheMib: 1, maxNumSeqs: 16, maxBatchTokens: 64 });
}

/** Runs one sequence alone; every output it produced, in order. */
async function outputsOf(target: EngineCore, request: SequenceRequest): Promise<SequenceOutput[]> {
  target.add(0, request);
  const outputs: SequenceOutput[] = [];
  while (target.hasWork) outputs.push(...(await target.step()).outputs);
  return outputs;
}

interface Delivered {
  ids: number[];
  text: string;
  logprobs: NonNullable<SequenceOutput['logprobs']>;
  finish: SequenceOutput['finish'];
}

function collect(outputs: readonly SequenceOutput[]): Delivered {
  return {
    ids: outputs.flatMap((output) => output.ids),
    text: outputs.map((output) => output.text).join(''),
    logprobs: outputs.flatMap((output) => output.logprobs ?? []),
    finish: outputs.at(-1)?.finish,
  };
}

/** The outputs up to and including the one that delivered the k-th id (none for k = 0). */
function cutAfter(outputs: readonly SequenceOutput[], k: number): SequenceOutput[] {
  let delivered = 0;
  for (let index = 0; index < outputs.length; index++) {
    if (delivered === k) return outputs.slice(0, index);
    delivered += outputs[index].ids.length;
  }
  return [...outputs];
}

/** Cuts the run after every delivered token, resumes each cut on a fresh core, and compares with ===. */
async function assertResumesEverywhere(request: SequenceRequest, runner?: ModelRunner): Promise<Delivered> {
  const whole = collect(await outputsOf(core(runner), request));
  assert.ok(whole.ids.length > 1, 'the run generates several tokens');
  for (let k = 0; k < whole.ids.length; k++) {
    const before = collect(cutAfter(await outputsOf(core(runner), request), k));
    assert.equal(before.ids.length, k);
    const rest = collect(await outputsOf(core(runner), { ...request, resumeIds: whole.ids.slice(0, k) }));
    assert.deepEqual([...before.ids, ...rest.ids], whole.ids, `ids after a cut at ${k}`);
    assert.equal(before.text + rest.text, whole.text, `text after a cut at ${k}`);
    assert.deepEqual([...before.logprobs, ...rest.logprobs], whole.logprobs, `logprobs after a cut at ${k}`);
    assert.equal(rest.finish, whole.finish, `finish after a cut at ${k}`);
  }
  return whole;
}

function request(promptIds: number[], maxTokens: number, sampling: Partial<SamplingParams>, extra: Partial<SequenceRequest> = {}): SequenceRequest {
  return { promptIds, maxTokens, sampling: samplingParams(sampling), stop: [], ignoreEos: true, ...extra };
}

const PROMPT = [1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58];

test('greedy with logprobs resumes identically after every delivered token', async () => {
  await assertResumesEverywhere(request(PROMPT, 20, { temperature: 0 }, { logprobs: 3 }));
});

test('seeded sampling with repetition, presence and frequency penalties resumes identically', async () => {
  const sampling = { temperature: 1.1, topK: 40, topP: 0.95, seed: 1234, repetitionPenalty: 1.3, presencePenalty: 0.7, frequencyPenalty: 0.9 };
  await assertResumesEverywhere(request(PROMPT, 24, sampling, { logprobs: 0 }));
});

test('a stop string whose held-back prefix spans the cut is neither lost nor shown twice', async () => {
  const free = collect(await outputsOf(core(), request(PROMPT, 24, { temperature: 0.9, seed: 77 })));
  // A stop string made of the end of one token's text and the start of a later one: the matcher holds
  // its first characters back across several cuts before it matches.
  const stop = free.text.slice(Math.floor(free.text.length / 2) - 3, Math.floor(free.text.length / 2) + 4);
  const stopped = await assertResumesEverywhere(request(PROMPT, 24, { temperature: 0.9, seed: 77 }, { stop: [stop, 'never-appears-at-all'] }));
  assert.equal(stopped.finish, 'stop');
  assert.equal(stopped.text, free.text.slice(0, free.text.indexOf(stop)));
});

test('multi-byte characters split over byte tokens resume without a broken or doubled character', async () => {
  const tokenizer = engine.tokenizer;
  const byteToken = (byte: number): number => {
    for (let id = 0; id < engine.config.vocabSize; id++) {
      const bytes = tokenizer.tokenBytes(id);
      if (bytes.length === 1 && bytes[0] === byte && tokenizer.tokenText(id).startsWith('<0x')) return id;
    }
    throw new Error(`no byte token for ${byte}`);
  };
  // "é", a word, then 😀 (F0 9F 98 80), another word, then the emoji again.
  const emoji = [0xf0, 0x9f, 0x98, 0x80].map(byteToken);
  const script = [byteToken(0xc3), byteToken(0xa9), 300, ...emoji, 301, ...emoji, 302];
  // A model that says the script: each row's logits favour the script's token at the position sampled next.
  const runner: ModelRunner = {
    forwardBatch: async (batch: Batch) => {
      const vocab = engine.config.vocabSize;
      const rows = batch.segments.filter((segment) => segment.logits === 'last');
      /** [rows, vocab] */
      const logits = new Float32Array(rows.length * vocab);
      rows.forEach((segment, row) => {
        const next = segment.positions[segment.positions.length - 1] + 1 - PROMPT.length;
        logits[row * vocab + script[next]] = 20;
      });
      return logits;
    },
  };
  const whole = await assertResumesEverywhere(request(PROMPT, script.length, { temperature: 0 }, { stop: ['😀 never'] }), runner);
  assert.deepEqual(whole.ids, script);
  assert.ok(whole.text.includes('é') && whole.text.split('😀').length === 3, whole.text);
});

test('constrained decoding (a regex) and logit bias resume identically: the grammar cursor moves past the delivered ids', async () => {
  // Exactly six words and a full stop: where the output must end depends on how far the cursor stands.
  const constraint = { type: 'regex', pattern: '[a-z]{1,6}( [a-z]{1,6}){5}\\.' } as const;
  const whole = await assertResumesEverywhere(request(PROMPT, 24, { temperature: 0.7, seed: 5 }, { constraint, logitBias: [[300, 2]], ignoreEos: false }));
  assert.match(whole.text.trim(), /^[a-z]{1,6}( [a-z]{1,6}){5}\.$/, whole.text);
  assert.equal(whole.finish, 'stop');
});

test('resumeIds that already finished the sequence are refused with a coded error', () => {
  const target = core();
  assert.throws(() => target.add(1, request(PROMPT, 3, { temperature: 0 }, { resumeIds: [5, 6, 7] })), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
  assert.throws(() => target.add(2, request(PROMPT, 5, { temperature: 0 }, { resumeIds: [5, 999999] })), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
  const eos = engine.config.eosTokenIds[0];
  assert.throws(() => target.add(3, request(PROMPT, 5, { temperature: 0 }, { ignoreEos: false, resumeIds: [eos] })), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
  const text = engine.tokenizer.tokenText(300);
  assert.throws(() => target.add(4, request(PROMPT, 5, { temperature: 0 }, { stop: [text.trim()], resumeIds: [300] })), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
});
