import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fixture } from '../testing/fixtures.js';
import { Engine } from './engine.js';

interface Golden {
  start_token: number;
  generated_ids: number[];
  text: string;
}

test('stories260K greedy from BOS reproduces all 256 golden ids', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  const goldenPath = fixture(t, 'stories260K.greedy.json');
  if (!model || !goldenPath) return;
  const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as Golden;
  const engine = await Engine.open(model);
  const result = await engine.complete({ promptIds: [golden.start_token], maxTokens: golden.generated_ids.length });
  assert.deepEqual(result.ids, golden.generated_ids);
  assert.equal(result.finishReason, 'length');
  assert.ok(result.text.startsWith('Once upon a time'), result.text.slice(0, 40));
});

test('logits at every position match the logits of generation steps', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const engine = await Engine.open(model);
  const prompt = [1, 403, 407, 261, 378];
  const all = await engine.logits(prompt);
  const vocab = engine.config.vocabSize;
  // Prefill in one piece vs one token at a time: same bits (DESIGN §4).
  for (let length = 1; length <= prompt.length; length++) {
    const prefix = await engine.logits(prompt.slice(0, length));
    assert.deepEqual(prefix.subarray((length - 1) * vocab, length * vocab), all.subarray((length - 1) * vocab, length * vocab));
  }
});

test('seeded sampling is reproducible and stop strings end the text', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const engine = await Engine.open(model);
  const request = { promptIds: [1], maxTokens: 40, sampling: { temperature: 0.9, topP: 0.95, seed: 7 } };
  const first = await engine.complete(request);
  const second = await engine.complete(request);
  assert.deepEqual(first.ids, second.ids);
  const other = await engine.complete({ ...request, sampling: { ...request.sampling, seed: 8 } });
  assert.notDeepEqual(first.ids, other.ids);
  const stopped = await engine.complete({ promptIds: [1], maxTokens: 100, stop: ['Lily'] });
  assert.equal(stopped.finishReason, 'stop');
  assert.ok(!stopped.text.includes('Lily'));
  assert.ok(stopped.text.endsWith('named '), JSON.stringify(stopped.text));
});

test('a prompt longer than the context is refused with a coded error', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const engine = await Engine.open(model);
  const tooLong = new Array<number>(engine.config.contextLength + 1).fill(5);
  await assert.rejects(() => engine.complete({ promptIds: tooLong, maxTokens: 1 }), { code: 'TESSERA_ERR_CONTEXT_OVERFLOW' });
  await assert.rejects(() => engine.logits([1, 99999]), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
});

test('max_tokens beyond the context is refused like the server refuses it, never shortened', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const engine = await Engine.open(model);
  const context = engine.config.contextLength;
  await assert.rejects(() => engine.complete({ promptIds: [1, 2, 3], maxTokens: context - 2 }), { code: 'TESSERA_ERR_CONTEXT_OVERFLOW' });
  const fits = await engine.complete({ promptIds: [1, 2, 3], maxTokens: context - 3, ignoreEos: true });
  assert.equal(fits.ids.length, context - 3);
  await assert.rejects(() => engine.complete({ promptIds: [1], maxTokens: 0 }), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
});

test('completeBatch runs several generations on one step loop, each the same ids and text as alone', async (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const engine = await Engine.open(model);
  const requests = [
    { promptIds: [1], maxTokens: 40 },
    { promptIds: [1, 403, 407, 261], maxTokens: 12, sampling: { temperature: 0.9, topP: 0.95, seed: 7 } },
    { promptIds: [1, 378], maxTokens: 100, stop: ['Lily'] },
    { promptIds: [1, 403], maxTokens: 25, ignoreEos: true },
  ];
  const batched = await engine.completeBatch(requests);
  assert.equal(batched.length, requests.length);
  for (const [i, request] of requests.entries()) {
    const alone = await engine.complete(request);
    assert.deepEqual(batched[i].ids, alone.ids, `request ${i}`);
    assert.equal(batched[i].text, alone.text);
    assert.equal(batched[i].finishReason, alone.finishReason);
    assert.equal(batched[i].timings.generatedTokens, alone.ids.length);
    assert.ok(batched[i].timings.prefillMs > 0 && batched[i].timings.decodeMs >= 0);
  }
  assert.deepEqual(await engine.completeBatch([]), []);
});
