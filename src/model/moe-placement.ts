/**
 * Where experts and tokens live under expert parallelism, as pure
 * functions: a Plan can be computed, printed and tested without a mesh.
 * Experts go to ranks in contiguous, near-equal runs (rank r owns
 * [floor(E·r/N), floor(E·(r+1)/N))), so a rank reads one contiguous byte
 * range of each packed expert tensor. A token's home rank is the one whose
 * contiguous slice of the batch holds it; the home rank routes the token
 * and combines its expert outputs.
 */
import { TesseraError } from '../core/errors.js';

export interface ExpertPlacement {
  numExperts: number;
  numRanks: number;
  /** [numExperts] rank that computes each expert. */
  ownerOf: Int32Array;
}

/** Contiguous near-equal runs of experts per rank. */
export function placeExperts(numExperts: number, numRanks: number): ExpertPlacement {
  if (!Number.isInteger(numRanks) || numRanks < 1 || numRanks > numExperts) {
    throw new TesseraError(
      'TESSERA_ERR_SHARD_CONSTRAINT',
      `--ep ${numRanks} cannot spread ${numExperts} experts; use a whole number from 1 to ${numExperts}`,
    );
  }
  const ownerOf = new Int32Array(numExperts);
  for (let rank = 0; rank < numRanks; rank++) {
    for (let expert = runStart(numExperts, numRanks, rank); expert < runStart(numExperts, numRanks, rank + 1); expert++) ownerOf[expert] = rank;
  }
  return { numExperts, numRanks, ownerOf };
}

/** Experts of `rank`, ascending. */
export function expertsOf(placement: ExpertPlacement, rank: number): number[] {
  const experts: number[] = [];
  placement.ownerOf.forEach((owner, expert) => {
    if (owner === rank) experts.push(expert);
  });
  return experts;
}

/** [start, end) of the batch tokens whose home is `rank`. */
export function homeTokens(numTokens: number, numRanks: number, rank: number): [number, number] {
  return [runStart(numTokens, numRanks, rank), runStart(numTokens, numRanks, rank + 1)];
}

function runStart(length: number, count: number, index: number): number {
  return Math.floor((length * index) / count);
}
