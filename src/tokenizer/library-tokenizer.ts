/**
 * A Tokenizer over a tokenizer.json object: @huggingface/tokenizers encodes,
 * we decode from piece bytes. Every loader (HF directory, GGUF vocabulary,
 * llama2.c tokenizer.bin) ends here, so they share one behaviour.
 */
import { Tokenizer as HfLibraryTokenizer } from '@huggingface/tokenizers';
import { TesseraError } from '../core/errors.js';
import type { DecodeOptions, EncodeOptions, Tokenizer } from './tokenizer.js';
import { EMPTY_BYTES, isBytePiece, pieceBytes, sentencePieceBytes, type PieceScheme } from './token-bytes.js';

/** One entry of tokenizer.json `added_tokens`. */
export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The parts of tokenizer.json we write and read. Component configs stay open objects. */
export interface TokenizerJson {
  version: string;
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: Record<string, unknown> | null;
  pre_tokenizer: Record<string, unknown> | null;
  post_processor: Record<string, unknown> | null;
  decoder: Record<string, unknown> | null;
  model: Record<string, unknown> & { type: string; vocab: Record<string, number> | unknown[] };
}

/** Everything a LibraryTokenizer needs besides the tokenizer.json object. */
export interface TokenizerSpec {
  json: TokenizerJson;
  config?: Record<string, unknown>;
  scheme: PieceScheme;
  stripsLeadingSpace: boolean;
  bosId: number | undefined;
  eosIds: readonly number[];
  addBosByDefault: boolean;
  chatTemplate: string | undefined;
  /**
   * BPE merge ranks keyed `JSON.stringify([left, right])` that replace the
   * library's index ranks. SentencePiece merges by score and breaks ties
   * leftmost; equal ranks let the library's position bias do the same.
   */
  mergeRanks?: Map<string, number>;
}

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const encoder = new TextEncoder();

export class LibraryTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  readonly addBosByDefault: boolean;
  readonly chatTemplate: string | undefined;
  readonly stripsLeadingSpace: boolean;

  private readonly spec: TokenizerSpec;
  private readonly library: HfLibraryTokenizer;
  private plainLibrary: HfLibraryTokenizer | undefined;
  private readonly texts: string[];
  private readonly addedTokens = new Map<number, AddedTokenJson>();
  private readonly bytesCache: (Uint8Array | undefined)[];

  constructor(spec: TokenizerSpec) {
    this.spec = spec;
    this.library = buildLibrary(spec, spec.json.added_tokens);
    this.texts = vocabularyTexts(spec.json);
    this.vocabSize = this.texts.length;
    this.bosId = spec.bosId;
    this.eosIds = spec.eosIds;
    this.addBosByDefault = spec.addBosByDefault;
    this.chatTemplate = spec.chatTemplate;
    this.stripsLeadingSpace = spec.stripsLeadingSpace;
    for (const added of spec.json.added_tokens) this.addedTokens.set(added.id, added);
    this.bytesCache = new Array(this.vocabSize);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const library = options.parseSpecial === false ? this.libraryWithoutSpecials() : this.library;
    const ids = text.length === 0 ? [] : library.encode(text, { add_special_tokens: false }).ids;
    if ((options.addBos ?? this.addBosByDefault) && this.bosId !== undefined) ids.unshift(this.bosId);
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skipSpecial = options.skipSpecial ?? true;
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      const bytes = !skipSpecial && this.isSpecial(id) ? encoder.encode(this.tokenText(id)) : this.tokenBytes(id);
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      all.set(part, offset);
      offset += part.length;
    }
    const start = this.stripsLeadingSpace && all[0] === 0x20 ? 1 : 0;
    return decoder.decode(all.subarray(start));
  }

  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    // Models pad their embedding past the vocabulary (Qwen2: 151936 rows); those ids have no text.
    if (id >= this.vocabSize) return EMPTY_BYTES;
    let bytes = this.bytesCache[id];
    if (bytes === undefined) {
      bytes = this.computeTokenBytes(id);
      this.bytesCache[id] = bytes;
    }
    return bytes;
  }

  tokenText(id: number): string {
    this.checkId(id);
    return this.texts[id] ?? '';
  }

  isSpecial(id: number): boolean {
    return this.addedTokens.get(id)?.special === true;
  }

  private computeTokenBytes(id: number): Uint8Array {
    const text = this.texts[id] ?? '';
    const added = this.addedTokens.get(id);
    if (added?.special) return EMPTY_BYTES;
    // Added tokens are matched as raw text, so they decode as raw text, not as pieces.
    if (added) return this.spec.scheme === 'sentencepiece' ? sentencePieceBytes(text, false) : encoder.encode(text);
    return pieceBytes(this.spec.scheme, text, this.spec.scheme === 'sentencepiece' && isBytePiece(text));
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is not a token id; pass non-negative integer ids`);
    }
  }

  /** Built on first use: the library always matches its added tokens, so plain text needs an instance without the special ones. */
  private libraryWithoutSpecials(): HfLibraryTokenizer {
    this.plainLibrary ??= buildLibrary(this.spec, this.spec.json.added_tokens.filter((token) => !token.special));
    return this.plainLibrary;
  }
}

function buildLibrary(spec: TokenizerSpec, addedTokens: AddedTokenJson[]): HfLibraryTokenizer {
  let library: HfLibraryTokenizer;
  try {
    library = new HfLibraryTokenizer({ ...spec.json, added_tokens: addedTokens }, spec.config ?? {});
  } catch (error) {
    throw new TesseraError(
      'TESSERA_ERR_TOKENIZER',
      `the tokenizer could not be built (${(error as Error).message}); check that tokenizer.json is complete and of a supported model type (BPE, Unigram, WordPiece)`,
      { cause: error },
    );
  }
  if (spec.mergeRanks) overrideMergeRanks(library, spec.mergeRanks);
  return library;
}

/** The library keeps ranks in `model.bpe_ranks` (key: JSON of the pair); replacing it is the one place we reach inside. */
function overrideMergeRanks(library: HfLibraryTokenizer, ranks: Map<string, number>): void {
  const model = library.model as unknown as { bpe_ranks?: unknown } | null;
  if (model && model.bpe_ranks instanceof Map) model.bpe_ranks = ranks;
}

/** Text of every id, model vocabulary and added tokens together. */
function vocabularyTexts(json: TokenizerJson): string[] {
  const texts: string[] = [];
  const vocab = json.model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [piece, score] pairs in id order.
    vocab.forEach((entry, id) => {
      texts[id] = Array.isArray(entry) ? String(entry[0]) : String(entry);
    });
  } else {
    for (const [text, id] of Object.entries(vocab)) texts[id] = text;
  }
  for (const added of json.added_tokens) texts[added.id] = added.content;
  for (let id = 0; id < texts.length; id++) texts[id] ??= '';
  return texts;
}
