/** The `usage` object of a response. */
import type { ChoiceResult } from './choice-run.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

/** Results hold `n` choices per prompt, in prompt order; a prompt counts once however many choices it has. */
export function usageOf(results: readonly ChoiceResult[], n: number): Usage {
  let prompt = 0;
  let cached = 0;
  let completion = 0;
  results.forEach((result, index) => {
    completion += result.ids.length;
    if (index % n === 0) {
      prompt += result.promptTokens;
      cached += result.cachedPromptTokens;
    }
  });
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: cached } };
}
