/** GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type). */
export const TokenType = {
  undefined: 0,
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** Tokens that live in tokenizer.json `added_tokens`; the special ones are the control/unknown tokens. */
export function addedTokenKind(type: number): 'special' | 'plain' | undefined {
  if (type === TokenType.control || type === TokenType.unknown) return 'special';
  if (type === TokenType.userDefined) return 'plain';
  return undefined;
}
