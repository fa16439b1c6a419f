/**
 * Constrained decoding in the engine core on a random-weight model: outputs
 * always satisfy the constraint, do not depend on batching, the greedy
 * shortcut gives the fully masked choice, and a cursor rebuilt from the
 * delivered ids stands where the original stood.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Constraint } from '../grammar/constraint.js';
import { synthesize } from '../synth/synthesize.js';
import { checkJsonSchema } from '../testing/json-schema-check.js';
import { seededRandom } from '../testing/grammar-walk.js';
import { sampleSchemas } from '../testing/sample-schemas.js';
import { Engine } from './engine.js';
import { EngineCore } from './engine-core.js';
import { sampleGuided } from './guided-sampler.js';
import { samplingParams, sampleToken, type SamplingParams } from './sampler.js';
import type { SequenceRequest } from './sequence.js';
import { TokenGrammarCache } from './token-grammar-cache.js';

let dir: string;
let engine: Engine;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tessera-constrained-'));
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'f32', out: path, format: 'gguf', seed: 5 });
  engine = await Engine.open(path);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function core(): EngineCore {
  return new EngineCore(engine.transformer, engine.config, engine.tokenizer, { kvCacheMib: 4, maxNumSeqs: 64, maxBatchTokens: 256 });
}

function request(constraint: Constraint, seed: number, sampling: Partial<SamplingParams> = {}): SequenceRequest {
  const promptIds = engine.tokenizer.encode('Reply in JSON: ', { addBos: true });
  return { promptIds, maxTokens: 400, sampling: samplingParams({ temperature: 1, seed, ...sampling }), stop: [], ignoreEos: false, constraint };
}

interface Finished {
  text: string;
  ids: number[];
  finish: string;
}

async function run(target: EngineCore, requests: SequenceRequest[]): Promise<Finished[]> {
  const results = requests.map((): Finished => ({ text: '', ids: [], finish: '' }));
  requests.forEach((r, i) => target.add(i, r));
  while (target.hasWork) {
    for (const output of (await target.step()).outputs) {
      const result = results[output.sequenceId];
      result.text += output.text;
      result.ids.push(...output.ids);
      if (output.error) throw new Error(output.error.message);
      if (output.finish) result.finish = output.finish;
    }
  }
  return results;
}

test('sampled outputs under sixteen assorted schemas all validate, and match their runs alone', async () => {
  const schemas = sampleSchemas().slice(0, 16);
  const requests = schemas.map((schema, i) => request({ type: 'json_schema', schema }, 100 + i));
  const batched = await run(core(), requests);
  batched.forEach((result, i) => {
    assert.equal(result.finish, 'stop', `schema ${i} ended by ${result.finish}: ${result.text}`);
    assert.deepEqual(checkJsonSchema(JSON.parse(result.text), schemas[i]), [], result.text);
  });
  for (const i of [0, 5, 11]) {
    const [alone] = await run(core(), [requests[i]]);
    assert.deepEqual(alone, batched[i]);
  }
});

test('regex and grammar constraints hold under greedy and sampled decoding', async () => {
  const regex: Constraint = { type: 'regex', pattern: '(yes|no), [a-z]{1,8}( [0-9]{1,3})?\\.' };
  const grammar: Constraint = { type: 'grammar', grammar: 'root ::= "[" item ("," item){0,3} "]"\nitem ::= [0-9] | "\\"" [a-c]{1,4} "\\""' };
  const results = await run(core(), [request(regex, 1), request(regex, 2, { temperature: 0 }), request(grammar, 3), request(grammar, 4, { temperature: 0 })]);
  for (const result of results.slice(0, 2)) assert.match(result.text, /^(yes|no), [a-z]{1,8}( [0-9]{1,3})?\.$/);
  for (const result of results.slice(2)) assert.match(result.text, /^\[([0-9]|"[a-c]{1,4}")(,([0-9]|"[a-c]{1,4}")){0,3}\]$/);
  for (const result of results) assert.equal(result.finish, 'stop');
});

test('the greedy shortcuts pick what the fully masked distribution picks, with and without penalties', () => {
  for (const params of [samplingParams({ temperature: 0 }), samplingParams({ temperature: 0, repetitionPenalty: 1.3 })]) checkShortcuts(params);
});

function checkShortcuts(params: SamplingParams): void {
  const cache = new TokenGrammarCache(engine.tokenizer, engine.config.vocabSize);
  const random = seededRandom(17);
  const cursor = cache.cursor({ type: 'json_object' }, engine.config.eosTokenIds, []);
  const text = engine.tokenizer.encode('{"key": [1, 2.5, "x"], "b": {"c": null}}', { addBos: false });
  for (const id of text) {
    for (let trial = 0; trial < 20; trial++) {
      const logits = Float32Array.from({ length: engine.config.vocabSize }, () => (random() - 0.5) * 8);
      if (trial % 3 === 0) logits[id] += 20; // often the allowed best, so the first shortcut is taken
      if (trial % 3 === 1) logits[Math.floor(random() * 20)] += 20; // often a forbidden best
      const history = { promptIds: [1], generatedIds: [] };
      assert.equal(sampleGuided(logits, params, history, 5, cursor, undefined), sampleToken(cursor.constrain(logits), params, history, 5));
    }
    cursor.advance(id);
  }
  assert.ok(cursor.finished);
}

test('a cursor rebuilt from the delivered ids allows exactly what the original allows', () => {
  const constraint: Constraint = { type: 'json_schema', schema: sampleSchemas()[4] };
  const ids = engine.tokenizer.encode('{"', { addBos: false });
  const original = new TokenGrammarCache(engine.tokenizer, engine.config.vocabSize).cursor(constraint, [2], []);
  for (const id of ids) original.advance(id);
  // A separate cache interns states in another order; masks are functions of the bytes read, not of ids.
  const rebuilt = new TokenGrammarCache(engine.tokenizer, engine.config.vocabSize).cursor(constraint, [2], ids);
  const logits = new Float32Array(engine.config.vocabSize).fill(1);
  assert.deepEqual(rebuilt.constrain(logits), original.constrain(logits));
});

test('logit_bias moves the choice, and a banned token never appears', async () => {
  const prompt = engine.tokenizer.encode('Once upon a time', { addBos: true });
  const plain = { promptIds: prompt, maxTokens: 12, sampling: samplingParams({ temperature: 0 }), stop: [], ignoreEos: true };
  const [free] = await run(core(), [plain]);
  const banned = free.ids[0];
  const [biased] = await run(core(), [{ ...plain, logitBias: [[banned, -100]] }]);
  assert.ok(!biased.ids.includes(banned));
  const [forced] = await run(core(), [{ ...plain, logitBias: [[77, 100]] }]);
  assert.deepEqual(forced.ids, new Array(12).fill(77));
});
