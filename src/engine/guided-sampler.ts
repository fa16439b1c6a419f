/**
 * The sampler with a request's logit bias and output constraint applied.
 * The token is always the one sampleToken would draw from the biased logits
 * with every forbidden id at −∞; the shortcut only skips work: under greedy
 * decoding, the unconstrained best token is the constrained best whenever
 * the constraint allows it (masking only removes candidates, and ties go to
 * the lowest id either way), so the mask is built only when it does not.
 */
import type { GrammarCursor } from './grammar-cursor.js';
import { sampleToken, type SamplingHistory, type SamplingParams } from './sampler.js';

/** Pairs [token id, bias]: added to the logit before penalties, as OpenAI's logit_bias. */
export type LogitBias = readonly (readonly [number, number])[];

export function sampleGuided(
  logits: Float32Array,
  params: SamplingParams,
  history: SamplingHistory,
  position: number,
  cursor: GrammarCursor | undefined,
  logitBias: LogitBias | undefined,
): number {
  const scores = logitBias && logitBias.length > 0 ? biased(logits, logitBias) : logits;
  if (!cursor) return sampleToken(scores, params, history, position);
  if (params.temperature === 0) {
    const best = sampleToken(scores, params, history, position);
    if (cursor.allows(best)) return best;
  }
  return sampleToken(cursor.constrain(scores), params, history, position);
}

function biased(logits: Float32Array, bias: LogitBias): Float32Array {
  /** [vocabSize] */
  const out = Float32Array.from(logits);
  for (const [id, value] of bias) out[id] += value;
  return out;
}
