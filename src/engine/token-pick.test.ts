/**
 * A rank-side pick is the driver's sampler, bit for bit: for random logits
 * and every sampling form a pick may carry, pickRows gives the id
 * sampleToken gives at the same position; rows that need the driver
 * (logprobs, constraint, logit bias, penalties) are never picked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { samplingParams, sampleToken, type SamplingParams } from './sampler.js';
import { joinRows, pickFor, pickRows, unpicked } from './token-pick.js';
import type { SequenceRequest } from './sequence.js';

const VOCAB = 512;

/** [rows, VOCAB] logits from a fixed linear congruential stream, with ties and a spread like a real head's. */
function logitsOf(rows: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const out = new Float32Array(rows * VOCAB);
  for (let i = 0; i < out.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = Math.round(((state / 2 ** 32) * 16 - 8) * 64) / 64;
  }
  return out;
}

function request(sampling: Partial<SamplingParams>, extra: Partial<SequenceRequest> = {}): SequenceRequest {
  return { promptIds: [1, 2, 3], maxTokens: 8, sampling: samplingParams(sampling), stop: [], ignoreEos: true, ...extra };
}

const FORMS: Partial<SamplingParams>[] = [
  { temperature: 0 },
  { temperature: 0.8, seed: 7 },
  { temperature: 1.3, topK: 20, seed: 11 },
  { temperature: 0.7, topP: 0.9, seed: 3 },
  { temperature: 1, minP: 0.05, seed: 5 },
  { temperature: 0.9, topK: 40, topP: 0.8, minP: 0.02, seed: -9 },
];

test('a pick gives the id sampleToken gives, for every sampling form and many positions', () => {
  for (const [f, form] of FORMS.entries()) {
    const seq = request(form);
    for (let position = 3; position < 40; position++) {
      const logits = logitsOf(1, 1000 * f + position);
      const pick = pickFor(seq, position);
      assert.ok(pick, `form ${f} is pickable`);
      const expected = sampleToken(logits, seq.sampling, { promptIds: seq.promptIds, generatedIds: [] }, position);
      const rows = pickRows(logits, [pick], VOCAB);
      assert.equal(rows.ids[0], expected, `form ${f}, position ${position}`);
      assert.equal(rows.logits.length, 0, 'a picked row sends no logits');
    }
  }
});

test('rows without a pick keep their logits, in row order, beside the picked ids', () => {
  const logits = logitsOf(3, 42);
  const pick = pickFor(request({ temperature: 0 }), 5);
  const rows = pickRows(logits, [undefined, pick, undefined], VOCAB);
  assert.equal(rows.ids[0], -1);
  assert.ok(rows.ids[1] >= 0);
  assert.equal(rows.ids[2], -1);
  assert.deepEqual(rows.logits, Float32Array.from([...logits.subarray(0, VOCAB), ...logits.subarray(2 * VOCAB)]));
  assert.deepEqual(unpicked(logits, VOCAB).ids, Int32Array.of(-1, -1, -1));
  const joined = joinRows([rows, unpicked(logits.subarray(0, VOCAB), VOCAB)]);
  assert.deepEqual(Array.from(joined.ids), [-1, rows.ids[1], -1, -1]);
  assert.equal(joined.logits.length, 3 * VOCAB);
});

test('sequences that need their logits at the driver are never picked', () => {
  assert.equal(pickFor(request({ temperature: 0 }, { logprobs: 0 }), 3), undefined, 'logprobs');
  assert.equal(pickFor(request({ temperature: 1 }, { constraint: { type: 'json_object' } }), 3), undefined, 'a constraint');
  assert.equal(pickFor(request({ temperature: 0 }, { logitBias: [[5, 2]] }), 3), undefined, 'a logit bias');
  assert.equal(pickFor(request({ temperature: 1, repetitionPenalty: 1.1 }), 3), undefined, 'repetition penalty');
  assert.equal(pickFor(request({ temperature: 1, presencePenalty: 0.5 }), 3), undefined, 'presence penalty');
  assert.equal(pickFor(request({ temperature: 1, frequencyPenalty: -0.5 }), 3), undefined, 'frequency penalty');
  assert.ok(pickFor(request({ temperature: 0 }, { logitBias: [] }), 3), 'an empty logit bias changes nothing');
});

test('a top-k past int32 travels as int32 and picks the same (both keep the whole vocabulary)', () => {
  const seq = request({ temperature: 0.9, topK: 2 ** 40, seed: 4 });
  const pick = pickFor(seq, 7);
  assert.equal(pick?.topK, 2 ** 31 - 1);
  const logits = logitsOf(1, 77);
  assert.equal(pickRows(logits, [pick], VOCAB).ids[0], sampleToken(logits, seq.sampling, { promptIds: seq.promptIds, generatedIds: [] }, 7));
});
