/**
 * The vocab-parallel argmax equals the argmax of whole rows: random rows
 * full of ties, NaNs and infinities, cut into 2 to 5 slices of uneven
 * widths, each slice's best exchanged as (score, id) and combined in
 * vocabulary order, pick exactly the id the sampler's scan picks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestRandom } from '../backend/backend-oracle.js';
import { argmax } from '../engine/token-ranking.js';
import { combineBests, fitsIdsInFloats, sliceBests } from './vocab-argmax.js';

/** Scores drawn from a few values, so ties are common; some NaN and infinite. */
function scoresOf(next: () => number, length: number, nanShare: number): Float32Array {
  const values = [-Infinity, -1.5, 0, 0.25, 2, 2, Infinity];
  return Float32Array.from({ length }, () => (next() < nanShare ? NaN : values[Math.floor(next() * values.length)] + (next() < 0.2 ? next() : 0)));
}

/** Cut points of `length` into `slices` non-empty runs of uneven widths. */
function cuts(next: () => number, length: number, slices: number): number[] {
  const points = new Set<number>();
  while (points.size < slices - 1) points.add(1 + Math.floor(next() * (length - 1)));
  return [0, ...[...points].sort((a, b) => a - b), length];
}

/** rows [rows, length] cut at `at` → each slice's bests, gathered as [rows, 2 * slices]. */
function gather(rows: Float32Array, length: number, at: number[]): Float32Array {
  const count = rows.length / length;
  const slices = at.length - 1;
  const bests = at.slice(0, -1).map((start, s) => {
    const width = at[s + 1] - start;
    const slice = new Float32Array(count * width);
    for (let row = 0; row < count; row++) slice.set(rows.subarray(row * length + start, row * length + start + width), row * width);
    return sliceBests(slice, width, start);
  });
  const gathered = new Float32Array(count * 2 * slices);
  for (let row = 0; row < count; row++) bests.forEach((best, s) => gathered.set(best.subarray(2 * row, 2 * row + 2), row * 2 * slices + 2 * s));
  return gathered;
}

test('combined slice bests pick the whole row\'s argmax, ties to the lowest id, NaNs as the sampler treats them', () => {
  // Seeded, so a failure replays.
  const generator = new TestRandom(18);
  const next = (): number => generator.next();
  for (let trial = 0; trial < 400; trial++) {
    const length = 5 + Math.floor(next() * 60);
    const slices = 2 + Math.floor(next() * 4);
    const count = 1 + Math.floor(next() * 4);
    const nanShare = [0, 0.1, 0.6, 1][trial % 4];
    /** [count, length] */
    const rows = scoresOf(next, count * length, nanShare);
    const ids = combineBests(gather(rows, length, cuts(next, length, slices)), slices);
    for (let row = 0; row < count; row++) {
      assert.equal(ids[row], argmax(rows.subarray(row * length, (row + 1) * length)), `trial ${trial} row ${row}`);
    }
  }
});

test('edge rows: a maximum in the last slice, equal maxima in two slices, a first slice of NaNs, all NaN', () => {
  const cases: [number[], number][] = [
    [[0, 1, 2, 3, 9], 4],
    [[5, 1, 2, 5, 5], 0],
    [[NaN, NaN, 1, 1, 0], 2],
    [[NaN, NaN, NaN, NaN, NaN], 4],
    [[-Infinity, -Infinity, -Infinity, -Infinity, -Infinity], 0],
  ];
  for (const [scores, expected] of cases) {
    const row = Float32Array.from(scores);
    assert.equal(argmax(row), expected, 'the sampler\'s scan');
    assert.equal(combineBests(gather(row, 5, [0, 2, 5]), 2)[0], expected, scores.join(','));
  }
});

test('ids are exact as float32 up to 2^24', () => {
  assert.equal(fitsIdsInFloats(32000), true);
  assert.equal(fitsIdsInFloats(2 ** 24), true);
  assert.equal(fitsIdsInFloats(2 ** 24 + 1), false);
  assert.equal(Math.fround(2 ** 24 - 1), 2 ** 24 - 1);
});
