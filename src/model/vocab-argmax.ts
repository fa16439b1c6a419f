/**
 * Greedy picks over vocab-parallel logits. Each rank of a split LM head
 * holds the logits of its slice of the vocabulary; gathering whole rows to
 * take one argmax moves (size - 1) / size of a row (a 32000-token
 * vocabulary: 128 KB a row) to every rank. Instead each rank takes the
 * best of its own slice, and the ranks exchange one (score, id) pair a row.
 *
 * The combination is the sampler's own argmax scan (token-ranking.ts: a
 * strictly greater score replaces the best, and so does anything after a
 * NaN best) applied to the slices' bests in vocabulary order. That equals
 * the scan over the whole row: a slice's scan started from the previous
 * slices' best keeps it unless the slice holds a strictly greater score, in
 * which case it ends on the slice's own first maximum; and a NaN best (every
 * score before it NaN) is replaced by whatever the slice's scan ends on.
 * So ids match the gathered path bit for bit, ties to the lowest id.
 *
 * Ids travel as float32, exact below 2^24; a larger vocabulary keeps the
 * gathered path (`fitsIdsInFloats`).
 */
import { argmax } from '../engine/token-ranking.js';

/** Whether every id of a `vocabSize` vocabulary is exact as a float32. */
export function fitsIdsInFloats(vocabSize: number): boolean {
  return vocabSize <= 2 ** 24;
}

/**
 * slice: [rows, width], ids [start, start + width) of each row →
 * [rows, 2]: each row's (best score, its id) in the slice.
 */
export function sliceBests(slice: Float32Array, width: number, start: number): Float32Array {
  const rows = slice.length / width;
  /** [rows, 2] */
  const bests = new Float32Array(rows * 2);
  for (let row = 0; row < rows; row++) {
    const scores = slice.subarray(row * width, (row + 1) * width);
    const best = argmax(scores);
    bests[2 * row] = scores[best];
    bests[2 * row + 1] = start + best;
  }
  return bests;
}

/**
 * gathered: [rows, 2 * slices], each slice's sliceBests columns side by
 * side in vocabulary order → [rows] the whole rows' argmax ids.
 */
export function combineBests(gathered: Float32Array, slices: number): Int32Array {
  const rows = gathered.length / (2 * slices);
  const ids = new Int32Array(rows);
  /** [slices] one row's best scores, in vocabulary order */
  const scores = new Float32Array(slices);
  for (let row = 0; row < rows; row++) {
    const at = row * 2 * slices;
    for (let slice = 0; slice < slices; slice++) scores[slice] = gathered[at + 2 * slice];
    ids[row] = gathered[at + 2 * argmax(scores) + 1];
  }
  return ids;
}
