/**
 * A byte-level BPE vocabulary (GGUF 'gpt2': GPT-2, Llama 3, Qwen2…) as
 * tokenizer.json. The pre-tokenizer regexes are llama.cpp's for each
 * `tokenizer.ggml.pre` value (llama-vocab.cpp), written as HF Split steps:
 * llama.cpp applies its regex list one after another, keeping unmatched text
 * as pieces, which is what a Sequence of `Isolated` splits does.
 */
import { TesseraError } from '../core/errors.js';
import type { TokenizerJson } from './library-tokenizer.js';
import { addedTokens, bosPostProcessor, vocabObject } from './spm-vocabulary.js';

export interface BpeVocabulary {
  /** Byte-level spelled tokens (Ġ for space). */
  tokens: readonly string[];
  types: readonly number[];
  /** "left right" pairs, highest priority first. */
  merges: readonly string[];
  /** tokenizer.ggml.pre; undefined means 'default'. */
  pre: string | undefined;
  bosId: number | undefined;
  addBos: boolean;
}

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEFAULT: four regexes in a row. */
const DEFAULT = ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'];

interface PreTokenizerRule {
  regexes: readonly string[];
  /** llama.cpp's tokenizer_ignore_merges: a word that is a whole token is taken as is. */
  ignoreMerges: boolean;
}

const PRE_TOKENIZERS: Readonly<Record<string, PreTokenizerRule>> = {
  default: { regexes: DEFAULT, ignoreMerges: false },
  gpt2: { regexes: [GPT2], ignoreMerges: false },
  'gpt-2': { regexes: [GPT2], ignoreMerges: false },
  'llama-bpe': { regexes: [LLAMA3], ignoreMerges: true },
  llama3: { regexes: [LLAMA3], ignoreMerges: true },
  'smaug-bpe': { regexes: [LLAMA3], ignoreMerges: false },
  dbrx: { regexes: [LLAMA3], ignoreMerges: false },
  qwen2: { regexes: [QWEN2], ignoreMerges: false },
  'deepseek-r1-qwen': { regexes: [QWEN2], ignoreMerges: false },
};

export const SUPPORTED_BPE_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

export function bpeTokenizerJson(vocab: BpeVocabulary): TokenizerJson {
  const rule = preTokenizerRule(vocab.pre);
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab.tokens, vocab.types),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...rule.regexes.map((regex) => ({ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: bosPostProcessor(vocab.tokens, vocab.bosId, vocab.addBos),
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: rule.ignoreMerges,
      vocab: vocabObject(vocab.tokens),
      merges: vocab.merges.map(splitMerge),
    },
  };
}

function preTokenizerRule(pre: string | undefined): PreTokenizerRule {
  const rule = PRE_TOKENIZERS[pre ?? 'default'];
  if (rule) return rule;
  throw new TesseraError(
    'TESSERA_ERR_TOKENIZER',
    `the GGUF vocabulary asks for pre-tokenizer '${pre}', which Tessera does not know yet ` +
      `(known: ${SUPPORTED_BPE_PRE_TOKENIZERS.join(', ')}); use the model's Hugging Face tokenizer.json instead`,
  );
}

function splitMerge(merge: string, index: number): [string, string] {
  const space = merge.indexOf(' ', 1);
  if (space <= 0) {
    throw new TesseraError(
      'TESSERA_ERR_TOKENIZER',
      `BPE merge #${index} (${JSON.stringify(merge)}) is not "left right"; the GGUF file's tokenizer.ggml.merges is damaged, re-convert the model`,
    );
  }
  return [merge.slice(0, space), merge.slice(space + 1)];
}
