import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { GREEDY, logSoftmax, sampleToken, samplingParams, topLogprobs, type SamplingParams } from './sampler.js';
import { uniform } from './random.js';
import { isTesseraError } from '../core/errors.js';

const NO_HISTORY = { promptIds: [], generatedIds: [] };

/** Logits of a distribution given as probabilities. */
function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

function counts(logits: Float32Array, params: SamplingParams, draws: number): number[] {
  const result = new Array<number>(logits.length).fill(0);
  for (let position = 0; position < draws; position++) result[sampleToken(logits, params, NO_HISTORY, position)]++;
  return result;
}

describe('random stream', () => {
  test('uniform is fixed by (seed, position) and lies in [0, 1)', () => {
    assert.equal(uniform(7, 3), uniform(7, 3));
    assert.notEqual(uniform(7, 3), uniform(7, 4));
    assert.notEqual(uniform(7, 3), uniform(8, 3));
    assert.notEqual(uniform(-1, 0), uniform(1, 0));
    let sum = 0;
    for (let i = 0; i < 10000; i++) {
      const u = uniform(42, i);
      assert.ok(u >= 0 && u < 1);
      sum += u;
    }
    assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02, `mean ${sum / 10000}`);
  });
});

describe('samplingParams', () => {
  test('fills defaults and keeps given fields', () => {
    const params = samplingParams({ topK: 5, seed: 3 });
    assert.deepEqual(params, { ...GREEDY, temperature: 1, topK: 5, seed: 3 });
    assert.equal(samplingParams({ topK: -1 }).topK, 0);
  });

  for (const [field, value] of [
    ['temperature', -0.1],
    ['topK', 1.5],
    ['topP', 0],
    ['topP', 1.2],
    ['minP', 2],
    ['repetitionPenalty', 0],
    ['presencePenalty', 3],
    ['frequencyPenalty', Number.NaN],
    ['seed', 0.5],
  ] as const) {
    test(`rejects ${field} = ${value} with a coded error naming the field`, () => {
      assert.throws(
        () => samplingParams({ [field]: value }),
        (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT' && error.message.includes(field),
      );
    });
  }

  test('rejects a non-number', () => {
    assert.throws(() => samplingParams({ temperature: '1' as unknown as number }), /temperature/);
  });
});

describe('sampleToken', () => {
  test('greedy is argmax with ties to the lowest id', () => {
    assert.equal(sampleToken(Float32Array.from([0.1, 3, -2, 3]), GREEDY, NO_HISTORY, 0), 1);
    assert.equal(sampleToken(Float32Array.from([-5, -1, -1]), GREEDY, NO_HISTORY, 9), 1);
    assert.equal(sampleToken(Float32Array.from([Number.NaN, -1, 2]), GREEDY, NO_HISTORY, 0), 2);
  });

  test('greedy without penalties (argmax of the float32 logits) picks what the float64 path picks, ties and NaN included', () => {
    let seed = 7;
    const next = (): number => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const penalized = { ...GREEDY, repetitionPenalty: 1.0000001 }; // the float64 path, penalties all but nil
    for (let trial = 0; trial < 200; trial++) {
      // Few distinct values: many ties; now and then a NaN or -Infinity.
      const logits = Float32Array.from({ length: 64 }, () => {
        const r = next();
        return r < 0.03 ? Number.NaN : r < 0.06 ? -Infinity : Math.round(next() * 6) / 3;
      });
      assert.equal(sampleToken(logits, GREEDY, NO_HISTORY, trial), sampleToken(logits, penalized, NO_HISTORY, trial));
    }
  });

  test('masked (-Infinity) tokens are never drawn', () => {
    const logits = Float32Array.from([-Infinity, 0, -Infinity, 0.5, -Infinity]);
    const seen = counts(logits, samplingParams({ seed: 4 }), 300);
    assert.equal(seen[0] + seen[2] + seen[4], 0);
    assert.ok(seen[1] > 0 && seen[3] > 0);
  });

  test('the same seed and position give the same token; seeds differ', () => {
    const logits = Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
    const a = samplingParams({ seed: 1 });
    const tokensA = Array.from({ length: 40 }, (_, p) => sampleToken(logits, a, NO_HISTORY, p));
    const again = Array.from({ length: 40 }, (_, p) => sampleToken(logits, a, NO_HISTORY, p));
    const tokensB = Array.from({ length: 40 }, (_, p) => sampleToken(logits, samplingParams({ seed: 2 }), NO_HISTORY, p));
    assert.deepEqual(again, tokensA);
    assert.notDeepEqual(tokensB, tokensA);
  });

  test('top-k = 1 equals greedy whatever the seed', () => {
    const logits = Float32Array.from({ length: 200 }, (_, i) => Math.cos(i * 1.7));
    const greedy = sampleToken(logits, GREEDY, NO_HISTORY, 0);
    for (let p = 0; p < 30; p++) assert.equal(sampleToken(logits, samplingParams({ topK: 1, seed: p }), NO_HISTORY, p), greedy);
  });

  test('top-k keeps only the k best tokens', () => {
    const logits = logitsOf([0.3, 0.05, 0.25, 0.2, 0.2]);
    const seen = counts(logits, samplingParams({ topK: 2 }), 400);
    assert.equal(seen[1] + seen[3] + seen[4], 0);
    assert.ok(seen[0] > 0 && seen[2] > 0);
  });

  test('a small top-p picks the top token; top-p keeps the nucleus', () => {
    const logits = logitsOf([0.1, 0.5, 0.25, 0.15]);
    assert.deepEqual(new Set(counts(logits, samplingParams({ topP: 0.3 }), 200).flatMap((c, id) => (c > 0 ? [id] : []))), new Set([1]));
    const seen = counts(logits, samplingParams({ topP: 0.7 }), 600);
    assert.equal(seen[0] + seen[3], 0);
    assert.ok(seen[1] > seen[2] && seen[2] > 0);
  });

  test('top-p over a large flat-tailed vocabulary keeps the exact nucleus', () => {
    const probs = Array.from({ length: 150_000 }, () => 0.5 / 149_990);
    for (let i = 0; i < 10; i++) probs[100 + i] = 0.05;
    const seen = counts(logitsOf(probs), samplingParams({ topP: 0.5 }), 300);
    const ids = seen.flatMap((c, id) => (c > 0 ? [id] : []));
    assert.ok(ids.every((id) => id >= 100 && id < 110), `drew ${ids}`);
  });

  test('min-p drops tokens below minP × the top probability', () => {
    const logits = logitsOf([0.5, 0.3, 0.04, 0.16]);
    const seen = counts(logits, samplingParams({ minP: 0.2 }), 600);
    assert.equal(seen[2], 0);
    assert.ok(seen[0] > 0 && seen[1] > 0 && seen[3] > 0);
  });

  test('repetition penalty discourages seen tokens of prompt and output', () => {
    const logits = Float32Array.from([2, 1.9, -1, -1.05]);
    const params = { ...GREEDY, repetitionPenalty: 1.5 };
    assert.equal(sampleToken(logits, params, { promptIds: [0], generatedIds: [] }, 0), 1);
    // A negative logit is multiplied, so it falls further.
    assert.equal(sampleToken(Float32Array.from([-3, -1, -1.05]), params, { promptIds: [], generatedIds: [1] }, 0), 2);
  });

  test('presence and frequency penalties count generated tokens only', () => {
    const logits = Float32Array.from([3, 2, 1.5]);
    const presence = { ...GREEDY, presencePenalty: 1.2 };
    assert.equal(sampleToken(logits, presence, { promptIds: [], generatedIds: [0] }, 0), 1);
    assert.equal(sampleToken(logits, presence, { promptIds: [0], generatedIds: [] }, 0), 0);
    const frequency = { ...GREEDY, frequencyPenalty: 0.4 };
    assert.equal(sampleToken(logits, frequency, { promptIds: [], generatedIds: [0, 0] }, 0), 0);
    assert.equal(sampleToken(logits, frequency, { promptIds: [], generatedIds: [0, 0, 0] }, 0), 1);
  });

  test('temperature sharpens and flattens the distribution', () => {
    const logits = logitsOf([0.6, 0.4]);
    const cold = counts(logits, samplingParams({ temperature: 0.2 }), 1000);
    const hot = counts(logits, samplingParams({ temperature: 5 }), 1000);
    assert.ok(cold[0] > 850, `cold ${cold}`);
    assert.ok(hot[0] < 600, `hot ${hot}`);
  });

  test('empirical frequencies over many positions match the distribution', () => {
    const probs = [0.5, 0.25, 0.15, 0.1];
    const draws = 8000;
    const seen = counts(logitsOf(probs), samplingParams({ seed: 11 }), draws);
    probs.forEach((p, id) => assert.ok(Math.abs(seen[id] / draws - p) < 0.02, `token ${id}: ${seen[id] / draws} vs ${p}`));
  });

  test('top-k on a 150k vocabulary only ever draws from the 40 best', () => {
    const logits = Float32Array.from({ length: 150_000 }, (_, i) => Math.sin(i * 0.37) * 4);
    const params = samplingParams({ topK: 40, topP: 0.9, seed: 5 });
    const threshold = [...logits].sort((a, b) => b - a)[39];
    for (let p = 0; p < 20; p++) assert.ok(logits[sampleToken(logits, params, NO_HISTORY, p)] >= threshold);
  });
});

describe('logprobs', () => {
  test('logSoftmax exponentiates to 1 and keeps differences', () => {
    const logits = Float32Array.from([1, 2, 3, -1]);
    const logprobs = logSoftmax(logits);
    const total = logprobs.reduce((a, b) => a + Math.exp(b), 0);
    assert.ok(Math.abs(total - 1) < 1e-6);
    assert.ok(Math.abs(logprobs[2] - logprobs[0] - 2) < 1e-6);
  });

  test('topLogprobs lists the k best, ties to the lower id', () => {
    const logits = Float32Array.from([0, 5, 5, 1, 4]);
    const top = topLogprobs(logits, 3);
    assert.deepEqual(top.map((t) => t.id), [1, 2, 4]);
    const all = logSoftmax(logits);
    assert.ok(Math.abs(top[2].logprob - all[4]) < 1e-6);
    assert.equal(topLogprobs(logits, 10).length, 5);
  });
});
