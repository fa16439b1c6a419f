/** Logprobs in the two shapes OpenAI returns them: legacy completions and chat. */
import type { TokenLogprob } from '../engine/sequence.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

const utf8 = new TextDecoder('utf-8');

/** A token's own text (a lone byte of a multi-byte character shows as U+FFFD). */
export function tokenString(tokenizer: Tokenizer, id: number): string {
  return utf8.decode(tokenizer.tokenBytes(id));
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/** `offset`: characters of the choice's text before these tokens. */
export function completionLogprobs(tokenizer: Tokenizer, ids: readonly number[], entries: readonly TokenLogprob[], offset: number): CompletionLogprobs {
  const result: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  ids.forEach((id, i) => {
    const token = tokenString(tokenizer, id);
    result.tokens.push(token);
    result.token_logprobs.push(entries[i]?.logprob ?? 0);
    result.top_logprobs.push(Object.fromEntries((entries[i]?.top ?? []).map((top) => [tokenString(tokenizer, top.id), top.logprob])));
    result.text_offset.push(at);
    at += token.length;
  });
  return result;
}

export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

export function chatLogprobs(tokenizer: Tokenizer, ids: readonly number[], entries: readonly TokenLogprob[]): { content: ChatTokenLogprob[] } {
  const entry = (id: number, logprob: number): { token: string; logprob: number; bytes: number[] } => ({
    token: tokenString(tokenizer, id),
    logprob,
    bytes: Array.from(tokenizer.tokenBytes(id)),
  });
  return {
    content: ids.map((id, i) => ({ ...entry(id, entries[i]?.logprob ?? 0), top_logprobs: (entries[i]?.top ?? []).map((top) => entry(top.id, top.logprob)) })),
  };
}
