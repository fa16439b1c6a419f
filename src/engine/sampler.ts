/**
 * Picks the next token from logits, with vLLM's semantics: repetition
 * penalty over prompt and output, presence/frequency penalties over output,
 * then temperature, top-k, top-p, min-p, and a draw. The draw's random number
 * comes from the request's stream at this position (random.ts), so a token
 * depends only on the logits, the params, the history and the position.
 */
import { TesseraError } from '../core/errors.js';
import { uniform } from './random.js';
import { argmax, idsAtLeast, maxScore, nucleus, topIds } from './token-ranking.js';

export interface SamplingParams {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off; keeps tokens with probability ≥ minP × the top probability. */
  minP: number;
  /** 1 = off; > 1 discourages tokens seen in prompt or output. */
  repetitionPenalty: number;
  /** Subtracted once from the logit of every token already generated. */
  presencePenalty: number;
  /** Subtracted from a token's logit per time it was generated. */
  frequencyPenalty: number;
  seed: number;
}

export const GREEDY: SamplingParams = Object.freeze({
  temperature: 0,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  seed: 0,
});

const DEFAULTS: SamplingParams = { ...GREEDY, temperature: 1 };

export interface SamplingHistory {
  promptIds: readonly number[];
  generatedIds: readonly number[];
}

type Rule = [test: (value: number) => boolean, expected: string];

const RULES: Record<keyof SamplingParams, Rule> = {
  temperature: [(v) => Number.isFinite(v) && v >= 0, 'a number ≥ 0 (0 = greedy)'],
  topK: [(v) => Number.isInteger(v) && v >= -1, 'an integer ≥ 0 (0 or -1 = off)'],
  topP: [(v) => v > 0 && v <= 1, 'a number in (0, 1] (1 = off)'],
  minP: [(v) => v >= 0 && v <= 1, 'a number in [0, 1] (0 = off)'],
  repetitionPenalty: [(v) => Number.isFinite(v) && v > 0, 'a number > 0 (1 = off)'],
  presencePenalty: [(v) => v >= -2 && v <= 2, 'a number in [-2, 2]'],
  frequencyPenalty: [(v) => v >= -2 && v <= 2, 'a number in [-2, 2]'],
  seed: [(v) => Number.isSafeInteger(v), 'a safe integer'],
};

/** Full params from a partial set: defaults filled in, every field checked. */
export function samplingParams(partial: Partial<SamplingParams>): SamplingParams {
  const params: SamplingParams = { ...DEFAULTS };
  for (const key of Object.keys(RULES) as (keyof SamplingParams)[]) {
    const value: unknown = partial[key];
    if (value === undefined) continue;
    const [valid, expected] = RULES[key];
    if (typeof value !== 'number' || !valid(value)) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `sampling parameter ${key} must be ${expected}; got ${String(value)}`);
    }
    params[key] = value;
  }
  if (params.topK < 0) params.topK = 0;
  return params;
}

/** The next token id. `position` indexes the request's random stream. */
export function sampleToken(
  logits: Float32Array,
  params: SamplingParams,
  history: SamplingHistory,
  position: number,
): number {
  if (logits.length === 0) throw new TesseraError('TESSERA_ERR_INTERNAL', 'cannot sample from an empty vocabulary');
  // Greedy without penalties is the argmax of the logits as they are (float64 holds every float32 exactly, so the
  // order and ties are the same): no [vocab] copy per sequence and step (2% of a 16-sequence decode step here).
  if (params.temperature === 0 && !hasPenalties(params)) return argmax(logits);
  /** [vocab] working copy, in float64. */
  const scores = Float64Array.from(logits);
  applyPenalties(scores, params, history);
  return pickToken(scores, params, params.temperature === 0 ? 0 : uniform(params.seed, position));
}

/** What picks a token from one step's scores alone, once penalties are applied: no history, no seed. */
export type PickParams = Pick<SamplingParams, 'temperature' | 'topK' | 'topP' | 'minP'>;

/**
 * The token for `scores` ([vocab], float64, penalties applied; divided in
 * place by the temperature): argmax at temperature 0, else the draw of `u`
 * (the request's uniform at this position) among the ids top-k, top-p and
 * min-p keep. A pure function, so whoever holds the logits (the last rank of
 * a mesh, token-pick.ts) picks exactly the id the driver would.
 */
export function pickToken(scores: Float64Array, params: PickParams, u: number): number {
  if (scores.length === 0) throw new TesseraError('TESSERA_ERR_INTERNAL', 'cannot sample from an empty vocabulary');
  if (params.temperature === 0) return argmax(scores);
  for (let id = 0; id < scores.length; id++) scores[id] /= params.temperature;
  return draw(scores, keptIds(scores, params), u);
}

/** True when the token depends on what was generated before (penalties), not only on the step's logits. */
export function hasPenalties(params: SamplingParams): boolean {
  return params.repetitionPenalty !== 1 || params.presencePenalty !== 0 || params.frequencyPenalty !== 0;
}

function applyPenalties(scores: Float64Array, params: SamplingParams, history: SamplingHistory): void {
  const vocab = scores.length;
  const inRange = (id: number): boolean => Number.isInteger(id) && id >= 0 && id < vocab;
  if (params.repetitionPenalty !== 1) {
    const seen = new Set<number>();
    for (const id of history.promptIds) seen.add(id);
    for (const id of history.generatedIds) seen.add(id);
    for (const id of seen) {
      if (!inRange(id)) continue;
      const s = scores[id];
      scores[id] = s > 0 ? s / params.repetitionPenalty : s * params.repetitionPenalty;
    }
  }
  if (params.presencePenalty !== 0 || params.frequencyPenalty !== 0) {
    const counts = new Map<number, number>();
    for (const id of history.generatedIds) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, count] of counts) {
      if (inRange(id)) scores[id] -= params.frequencyPenalty * count + params.presencePenalty;
    }
  }
}

/** Ids that survive top-k, top-p and min-p; undefined when all do. */
function keptIds(scores: Float64Array, params: PickParams): Int32Array | undefined {
  let kept: Int32Array | undefined;
  if (params.topK > 0 && params.topK < scores.length) kept = topIds(scores, params.topK);
  if (params.topP < 1) kept = nucleus(scores, kept, params.topP);
  // p / pMax is the same before and after renormalizing, so min-p compares scores.
  if (params.minP > 0) kept = idsAtLeast(scores, maxScore(scores) + Math.log(params.minP), kept);
  return kept;
}

/** Inverse-CDF draw over the kept ids walked in id order (an order every path shares). */
function draw(scores: Float64Array, kept: Int32Array | undefined, u: number): number {
  const ids = kept === undefined ? undefined : Int32Array.from(kept).sort();
  const count = ids === undefined ? scores.length : ids.length;
  const idAt = (i: number): number => (ids === undefined ? i : ids[i]);
  const max = maxScore(scores);
  let total = 0;
  for (let i = 0; i < count; i++) total += Math.exp(scores[idAt(i)] - max);
  const target = u * total;
  let mass = 0;
  let last = idAt(0);
  for (let i = 0; i < count; i++) {
    const weight = Math.exp(scores[idAt(i)] - max);
    if (weight === 0) continue;
    last = idAt(i);
    mass += weight;
    if (target < mass) return last;
  }
  return last;
}

/** log softmax of logits, computed in float64. */
export function logSoftmax(logits: Float32Array): Float32Array {
  const logTotal = logSumExp(logits);
  const out = new Float32Array(logits.length);
  for (let id = 0; id < logits.length; id++) out[id] = logits[id] - logTotal;
  return out;
}

/** The k most likely tokens with their log probabilities, best first (ties to lower id). */
export function topLogprobs(logits: Float32Array, k: number): { id: number; logprob: number }[] {
  const logTotal = logSumExp(logits);
  return Array.from(topIds(logits, k), (id) => ({ id, logprob: logits[id] - logTotal }));
}

function logSumExp(logits: Float32Array): number {
  const max = maxScore(logits);
  if (!Number.isFinite(max)) return max;
  let total = 0;
  for (let id = 0; id < logits.length; id++) total += Math.exp(logits[id] - max);
  return max + Math.log(total);
}
