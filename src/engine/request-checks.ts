/**
 * The checks a sequence request passes before an engine core queues it:
 * prompt and logit-bias ids inside the vocabulary, a positive max_tokens, a
 * resume form that has not already finished, and room in the context. Each
 * failure is a coded error for the caller (HTTP 400 on the server).
 */
import { TesseraError } from '../core/errors.js';
import type { SequenceRequest } from './sequence.js';

export interface RequestLimits {
  vocabSize: number;
  /** Longest prompt + output the core serves. */
  maxModelLen: number;
  /** End-of-sequence ids (never delivered as output). */
  eos: ReadonlySet<number>;
}

/** Throws the coded error of the first check `request` fails. */
export function checkSequenceRequest(request: SequenceRequest, limits: RequestLimits): void {
  const { promptIds, maxTokens } = request;
  if (promptIds.length === 0) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'the prompt is empty; give at least one token');
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is outside the vocabulary [0, ${limits.vocabSize})`);
    }
  }
  for (const [id] of request.logitBias ?? []) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `logit_bias names token id ${id}, outside the vocabulary [0, ${limits.vocabSize})`);
  }
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `max_tokens must be at least 1, got ${maxTokens}`);
  checkResume(request, limits);
  if (promptIds.length + maxTokens > limits.maxModelLen) {
    throw new TesseraError(
      'TESSERA_ERR_CONTEXT_OVERFLOW',
      `the prompt has ${promptIds.length} tokens and asks for ${maxTokens} more, but the context holds ${limits.maxModelLen}; shorten the prompt or lower max_tokens`,
    );
  }
}

/** Delivered ids of a resumed sequence: in the vocabulary, and not already the end of it. */
function checkResume(request: SequenceRequest, limits: RequestLimits): void {
  const resumeIds = request.resumeIds ?? [];
  if (resumeIds.length >= request.maxTokens) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `resumeIds has ${resumeIds.length} ids but max_tokens is ${request.maxTokens}: that sequence has finished; do not resume it`);
  }
  for (const id of resumeIds) {
    if (!Number.isInteger(id) || id < 0 || id >= limits.vocabSize) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `resumed token id ${id} is outside the vocabulary [0, ${limits.vocabSize})`);
    }
    // An end-of-sequence token is never delivered as output (it ends the sequence instead).
    if (!request.ignoreEos && limits.eos.has(id)) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `resumeIds hold the end-of-sequence token ${id}: that sequence has finished; do not resume it`);
  }
}
