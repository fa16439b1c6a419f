/** What a caller asks of one generation, and what it gets back. */
import type { SamplingParams } from './sampler.js';

export interface GenerationRequest {
  promptIds: readonly number[];
  maxTokens: number;
  /** Unset fields take the sampler's defaults, except temperature, which defaults to 0 (greedy). */
  sampling?: Partial<SamplingParams>;
  /** Text that ends the generation when it appears; it is not part of the output. */
  stop?: readonly string[];
  /** Keep generating through end-of-sequence tokens (benchmarks). */
  ignoreEos?: boolean;
}

export type FinishReason = 'stop' | 'length';

/** One step of a streamed generation. */
export interface GeneratedToken {
  /** The token, or -1 for text released only when the generation ended. */
  id: number;
  /** Text that became safe to show with this token (may be empty). */
  text: string;
}

export interface GenerationTimings {
  promptTokens: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export interface GenerationResult {
  promptIds: number[];
  ids: number[];
  text: string;
  finishReason: FinishReason;
  timings: GenerationTimings;
}
