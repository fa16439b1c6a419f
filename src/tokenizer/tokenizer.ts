/**
 * The one tokenizer interface every loader returns (tokenizer.json, GGUF
 * vocabularies, llama2.c tokenizer.bin). Encoding runs through
 * @huggingface/tokenizers; decoding is ours, built on `tokenBytes`, so that
 * `decode` and the streaming decoder can never disagree.
 */

export interface EncodeOptions {
  /** Prepend BOS. Default: the tokenizer's `addBosByDefault`. */
  addBos?: boolean;
  /**
   * Turn the text of special (control) tokens such as `<|im_start|>` into
   * their ids. Default true, because a rendered chat template carries them as
   * text. Pass false for untrusted user text that must stay plain text.
   * Non-special added tokens (GGUF "user-defined") always match, as in llama.cpp.
   */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out control tokens (BOS, EOS, `<|im_end|>`…). Default true. */
  skipSpecial?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  /** Whether encode adds BOS by default (GGUF tokenizer.ggml.add_bos_token, tokenizer_config add_bos_token / the post-processor, llama2.c: yes). */
  readonly addBosByDefault: boolean;
  readonly chatTemplate: string | undefined;
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * Text of `ids`. SentencePiece-style vocabularies (those that add a space
   * prefix when encoding) drop one space at the very start of the output, as
   * SentencePiece and llama.cpp do; so decode(encode(text)) === text.
   */
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The raw UTF-8 bytes this token contributes to output text (SentencePiece ▁ → space, <0xAB> byte tokens → that byte, byte-level BPE → its bytes, control tokens and ids past the vocabulary → nothing). For streaming. */
  tokenBytes(id: number): Uint8Array;
  /** The token as written in the vocabulary (`▁the`, `Ġthe`, `<0x0A>`, `<s>`). */
  tokenText(id: number): string;
  isSpecial(id: number): boolean;
  /**
   * True when decode drops one leading space of the output (SentencePiece
   * with a space prefix). StreamDecoder applies the same rule.
   */
  readonly stripsLeadingSpace: boolean;
}
