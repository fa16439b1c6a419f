/**
 * Picking a step's tokens where its logits are. A mesh's reporting rank
 * holds the logits [rows, vocabSize] that the driver would otherwise receive
 * whole (128 KB a row for a 32000-token vocabulary) only to pick one id from
 * each row. For a sequence whose next token depends on that row alone (no
 * penalties over its history, no logit bias, no constraint, no logprobs),
 * the driver sends the pick's parameters with the uniform it draws from the
 * request's stream, and the rank runs the sampler's own pure `pickToken` and
 * sends the id back. Every other row still comes back as logits (a per-row
 * fallback) and the core samples it as before. Same function, same float32
 * logits, same uniform: the same id (DESIGN §4).
 */
import type { SequenceRequest } from './sequence.js';
import { hasPenalties, pickToken, type PickParams } from './sampler.js';
import { uniform } from './random.js';

/** The largest top-k a step carries (int32, as its schema bounds it). */
const MAX_TOP_K = 2 ** 31 - 1;

/** How to pick one row's token: the step-local sampling params and the request's uniform at this position. */
export interface TokenPick extends PickParams {
  /** uniform(seed, position) in [0, 1); 0 (unused) at temperature 0. */
  u: number;
  /**
   * The uniform at the following position, when the driver expects to ask
   * for this sequence's next token too: a one-stage mesh may compute that
   * step before it is asked (src/cluster/run-ahead.ts).
   */
  next?: number;
  /**
   * The uniforms of the positions after this one, when the driver asks a
   * one-stage mesh for a burst: the ranks compute those steps too, each fed
   * the id picked before it, and reply once with every step's ids
   * (src/cluster/decode-burst.ts). Empty or absent: this step only.
   */
  burst?: number[];
}

/** A forward pass's logit rows, each picked (an id) or not (its logits). */
export interface PickedRows {
  /** [rows] the picked id, or -1 where the row's logits came instead. */
  ids: Int32Array;
  /** [rows whose id is -1, vocabSize], in row order. */
  logits: Float32Array;
  /**
   * A burst's later steps (every row picked): following[j][row] is the id
   * picked at step j + 1, fed the id of step j. Absent for one step.
   */
  following?: Int32Array[];
}

/**
 * The pick of a sequence's next token (at `position`), or undefined when it
 * needs the whole row at the driver. `ahead`: the driver expects to ask for
 * the token after it too (the pick then carries that position's uniform).
 * `burst`: the steps after this one the ranks compute in the same round
 * trip (the pick carries their positions' uniforms).
 */
export function pickFor(request: SequenceRequest, position: number, ahead = false, burst = 0): TokenPick | undefined {
  if (request.logprobs !== undefined || request.constraint !== undefined || (request.logitBias?.length ?? 0) > 0 || hasPenalties(request.sampling)) return undefined;
  const { temperature, topK, topP, minP, seed } = request.sampling;
  const draw = (at: number): number => (temperature === 0 ? 0 : uniform(seed, at));
  // A top-k at or past the vocabulary keeps every id, so any value past int32 (a step's bound) picks the same.
  const following = burst > 0 ? { burst: Array.from({ length: burst }, (_, i) => draw(position + 1 + i)) } : {};
  return { temperature, topK: Math.min(topK, MAX_TOP_K), topP, minP, u: draw(position), ...(ahead ? { next: draw(position + 1) } : {}), ...following };
}

/** The same pick of one row: the same sampling parameters and uniform (what either says of later positions aside). */
export function samePick(a: TokenPick, b: TokenPick | undefined): boolean {
  return b !== undefined && a.temperature === b.temperature && a.topK === b.topK && a.topP === b.topP && a.minP === b.minP && a.u === b.u;
}

/** Every row as logits: what a runner that picks nothing returns. logits: [rows, vocabSize]. */
export function unpicked(logits: Float32Array, vocabSize: number): PickedRows {
  return { ids: new Int32Array(logits.length / vocabSize).fill(-1), logits };
}

/** logits: [rows, vocabSize]; picks[r]: row r's pick, or undefined to send its logits on. */
export function pickRows(logits: Float32Array, picks: readonly (TokenPick | undefined)[], vocabSize: number): PickedRows {
  const rows = logits.length / vocabSize;
  const ids = new Int32Array(rows).fill(-1);
  const kept: number[] = [];
  for (let row = 0; row < rows; row++) {
    /** [vocabSize] */
    const rowLogits = logits.subarray(row * vocabSize, (row + 1) * vocabSize);
    const pick = picks[row];
    if (pick) ids[row] = pickToken(Float64Array.from(rowLogits), pick, pick.u);
    else kept.push(row);
  }
  if (kept.length === rows) return { ids, logits };
  /** [kept rows, vocabSize] */
  const out = new Float32Array(kept.length * vocabSize);
  kept.forEach((row, i) => out.set(logits.subarray(row * vocabSize, (row + 1) * vocabSize), i * vocabSize));
  return { ids, logits: out };
}

/** Rows of several forward passes, end to end (pipeline micro-batches). */
export function joinRows(parts: readonly PickedRows[]): PickedRows {
  if (parts.length === 1) return parts[0];
  const ids = new Int32Array(parts.reduce((sum, part) => sum + part.ids.length, 0));
  const logits = new Float32Array(parts.reduce((sum, part) => sum + part.logits.length, 0));
  let idAt = 0;
  let logitAt = 0;
  for (const part of parts) {
    ids.set(part.ids, idAt);
    logits.set(part.logits, logitAt);
    idAt += part.ids.length;
    logitAt += part.logits.length;
  }
  return { ids, logits };
}
