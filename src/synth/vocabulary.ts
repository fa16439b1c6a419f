/**
 * Deterministic synthetic vocabularies of an exact size that llama.cpp
 * accepts, seeded from common English words so natural text tokenizes into
 * whole-word pieces:
 * - SentencePiece ('llama' model): <unk>, <s>, </s>, 256 byte tokens, then
 *   pieces whose every prefix is also a piece, scores decreasing;
 * - byte-level BPE ('gpt2' model): the 256 byte characters, merges learned by
 *   a small BPE training run over the word list (so every word reproduces its
 *   own segmentation), filler merges up to the size, then special tokens.
 */
import { chatTemplateFor } from './chat-templates.js';
import { ENGLISH_WORDS } from './english-words.js';
import type { VocabularyStyle } from './presets.js';

/** llama.cpp token types (llama_token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface SynthVocabulary {
  readonly style: VocabularyStyle;
  /** tokenizer.ggml.model */
  readonly model: 'llama' | 'gpt2';
  /** tokenizer.ggml.pre (byte-level BPE only). */
  readonly pre?: 'llama-bpe' | 'qwen2';
  readonly tokens: string[];
  /** [tokens.length] TOKEN_TYPE values */
  readonly tokenTypes: number[];
  /** [tokens.length] SentencePiece scores (SentencePiece only). */
  readonly scores?: number[];
  /** "left right" pairs in rank order (BPE only). */
  readonly merges?: string[];
  readonly bosTokenId: number;
  /** The token that ends an assistant turn in the chat template. */
  readonly eosTokenId: number;
  /** Every token that ends generation. */
  readonly eosTokenIds: number[];
  readonly unknownTokenId?: number;
  readonly paddingTokenId?: number;
  readonly addBosToken: boolean;
  readonly chatTemplate: string;
  /** Ids of ordinary text tokens (not control, byte or unused): what synthetic weights may predict. */
  readonly textTokenIds: number[];
}

const FILLER_ALPHABET = 'etaoinshrdlcumwfgypbvkjxqz';
const PUNCTUATION = ".,!?'\";:-()0123456789";

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** Strings over FILLER_ALPHABET, shortest first, each with and without `marker` in front. */
function* fillerStrings(marker: string): Generator<string> {
  let level = [''];
  for (;;) {
    const next: string[] = [];
    for (const stem of level) for (const letter of FILLER_ALPHABET) next.push(stem + letter);
    for (const text of next) {
      yield marker + text;
      yield text;
    }
    level = next;
  }
}

export function buildVocabulary(style: VocabularyStyle, size: number): SynthVocabulary {
  return style === 'sentencepiece' ? sentencePieceVocabulary(size) : byteLevelVocabulary(style, size);
}

function sentencePieceVocabulary(size: number): SynthVocabulary {
  const tokens = ['<unk>', '<s>', '</s>'];
  const tokenTypes: number[] = [TOKEN_TYPE.unknown, TOKEN_TYPE.control, TOKEN_TYPE.control];
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    tokenTypes.push(TOKEN_TYPE.byte);
  }
  const seen = new Set(tokens);
  const add = (piece: string): boolean => {
    if (tokens.length >= size) return false;
    if (!seen.has(piece)) {
      seen.add(piece);
      tokens.push(piece);
      tokenTypes.push(TOKEN_TYPE.normal);
    }
    return true;
  };
  const pieces = function* (): Generator<string> {
    yield '▁';
    for (const c of FILLER_ALPHABET + FILLER_ALPHABET.toUpperCase() + PUNCTUATION) yield c;
    // Every prefix of a piece is a piece, so SentencePiece merging always reaches the whole word.
    for (const word of ENGLISH_WORDS) {
      for (const form of [`▁${word}`, `▁${capitalize(word)}`]) {
        for (let end = 2; end <= form.length; end++) yield form.slice(0, end);
      }
    }
    yield* fillerStrings('▁');
  };
  for (const piece of pieces()) if (!add(piece)) break;
  const scores = tokens.map((_, id) => (tokenTypes[id] === TOKEN_TYPE.normal ? -id : 0));
  return {
    style: 'sentencepiece',
    model: 'llama',
    tokens,
    tokenTypes,
    scores,
    bosTokenId: 1,
    eosTokenId: 2,
    eosTokenIds: [2],
    unknownTokenId: 0,
    addBosToken: true,
    chatTemplate: chatTemplateFor('sentencepiece'),
    textTokenIds: idsOfType(tokenTypes, TOKEN_TYPE.normal),
  };
}

function idsOfType(tokenTypes: number[], type: number): number[] {
  const ids: number[] = [];
  tokenTypes.forEach((t, id) => {
    if (t === type) ids.push(id);
  });
  return ids;
}

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest map to U+0100 onward. */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) chars.push(String.fromCodePoint(printable(byte) ? byte : 256 + shifted++));
  return chars;
}

const QWEN_SPECIALS = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>', '<|box_end|>',
  '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>',
  '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>',
];
const LLAMA3_SPECIALS = [
  '<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>', '<|finetune_right_pad_id|>',
  '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>', '<|eom_id|>', '<|eot_id|>', '<|python_tag|>',
];

/**
 * Special tokens at the end of the vocabulary. Real-size vocabularies get the
 * real models' full blocks (so ids match: 151643 <|endoftext|>, 128000
 * <|begin_of_text|>); small ones only what the chat template needs.
 */
function specialTokens(style: 'llama-bpe' | 'qwen2', size: number): string[] {
  const large = size >= 100000;
  if (style === 'qwen2') return large ? QWEN_SPECIALS : QWEN_SPECIALS.slice(0, 3);
  if (!large) return ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
  const all = [...LLAMA3_SPECIALS];
  for (let index = 3; all.length < 256; index++) all.push(`<|reserved_special_token_${index}|>`);
  return all;
}

/** Text tokens before the specials; Qwen's real vocabulary pads 151665 tokens up to the embedding size. */
function regularTokenCount(style: 'llama-bpe' | 'qwen2', size: number, specials: number): number {
  if (style === 'qwen2' && size >= 151665) return 151643;
  return size - specials;
}

function byteLevelVocabulary(style: 'llama-bpe' | 'qwen2', size: number): SynthVocabulary {
  const specials = specialTokens(style, size);
  const regular = regularTokenCount(style, size, specials.length);
  const alphabet = byteLevelAlphabet();
  const tokens = [...alphabet];
  const seen = new Set(tokens);
  const merges: string[] = [];
  const addMerge = (left: string, right: string): boolean => {
    if (tokens.length >= regular) return false;
    const merged = left + right;
    if (seen.has(merged) || !seen.has(left) || !seen.has(right)) return true;
    seen.add(merged);
    tokens.push(merged);
    merges.push(`${left} ${right}`);
    return true;
  };
  for (const [left, right] of trainMerges(regular - tokens.length)) addMerge(left, right);
  for (const filler of fillerStrings('Ġ')) {
    if (tokens.length >= regular) break;
    const chars = [...filler];
    if (chars.length >= 2) addMerge(chars.slice(0, -1).join(''), chars[chars.length - 1]);
  }
  const tokenTypes: number[] = tokens.map(() => TOKEN_TYPE.normal);
  const textTokenIds = tokens.map((_, id) => id);
  for (const special of specials) {
    tokens.push(special);
    tokenTypes.push(TOKEN_TYPE.control);
  }
  for (let id = tokens.length; id < size; id++) {
    tokens.push(`[PAD${id}]`);
    tokenTypes.push(TOKEN_TYPE.unused);
  }
  const id = (text: string): number => tokens.indexOf(text, regular);
  const qwen = style === 'qwen2';
  const eos = qwen ? id('<|im_end|>') : id('<|eot_id|>');
  const endOfText = qwen ? id('<|endoftext|>') : id('<|end_of_text|>');
  return {
    style,
    model: 'gpt2',
    pre: style,
    tokens,
    tokenTypes,
    merges,
    bosTokenId: qwen ? endOfText : id('<|begin_of_text|>'),
    eosTokenId: eos,
    eosTokenIds: [eos, endOfText],
    paddingTokenId: endOfText,
    addBosToken: !qwen,
    chatTemplate: chatTemplateFor(style),
    textTokenIds,
  };
}

/**
 * A BPE training run over the word list (Zipf-weighted, with and without a
 * leading space, lower and capitalized): the most frequent adjacent pair is
 * merged first, ties broken by the pair's text. At most `limit` merges.
 */
function trainMerges(limit: number): Array<[string, string]> {
  const words: string[][] = [];
  const weights: number[] = [];
  ENGLISH_WORDS.forEach((word, rank) => {
    const weight = Math.max(1, Math.floor(4000 / (rank + 1)));
    const forms: Array<[string, number]> = [
      [`Ġ${word}`, weight * 4],
      [word, weight],
      [`Ġ${capitalize(word)}`, weight],
      [capitalize(word), weight],
    ];
    for (const [form, formWeight] of forms) {
      if (form.length < 2) continue;
      words.push([...form]);
      weights.push(formWeight);
    }
  });
  const counts = new Map<string, number>();
  const count = (word: string[], weight: number): void => {
    for (let i = 0; i + 1 < word.length; i++) {
      const key = `${word[i]} ${word[i + 1]}`;
      counts.set(key, (counts.get(key) ?? 0) + weight);
    }
  };
  words.forEach((word, index) => count(word, weights[index]));
  const merges: Array<[string, string]> = [];
  while (merges.length < limit) {
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, value] of counts) {
      if (value > bestCount || (value === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = value;
      }
    }
    if (best === undefined || bestCount <= 0) break;
    const [left, right] = best.split(' ');
    merges.push([left, right]);
    words.forEach((word, index) => {
      if (!containsPair(word, left, right)) return;
      count(word, -weights[index]);
      words[index] = applyMerge(word, left, right);
      count(words[index], weights[index]);
    });
    for (const [key, value] of counts) if (value <= 0) counts.delete(key);
  }
  return merges;
}

function containsPair(word: string[], left: string, right: string): boolean {
  for (let i = 0; i + 1 < word.length; i++) if (word[i] === left && word[i + 1] === right) return true;
  return false;
}

function applyMerge(word: string[], left: string, right: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < word.length; i++) {
    if (i + 1 < word.length && word[i] === left && word[i + 1] === right) {
      out.push(left + right);
      i++;
    } else {
      out.push(word[i]);
    }
  }
  return out;
}
