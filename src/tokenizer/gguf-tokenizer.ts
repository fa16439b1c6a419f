/**
 * Tokenizers embedded in GGUF metadata (tokenizer.ggml.*). The vocabulary
 * becomes a tokenizer.json object (also exported for writing HF directories
 * with the same vocabulary) and runs through the same library as HF models.
 */
import { TesseraError } from '../core/errors.js';
import type { GgufValue } from '../format/gguf-types.js';
import { bpeTokenizerJson } from './bpe-vocabulary.js';
import { LibraryTokenizer, type TokenizerJson } from './library-tokenizer.js';
import { spmTokenizerJson, type SpmConversion } from './spm-vocabulary.js';
import type { Tokenizer } from './tokenizer.js';

export type GgufMetadataMap = ReadonlyMap<string, GgufValue>;

/** tokenizer.json for the GGUF vocabulary ('llama' SentencePiece or 'gpt2' byte-level BPE). */
export function tokenizerJsonFromGguf(metadata: GgufMetadataMap): TokenizerJson {
  return convert(metadata).json;
}

/**
 * tokenizer_config.json fields that go with `tokenizerJsonFromGguf`, so that
 * loadHfTokenizer on the written pair behaves like tokenizerFromGguf.
 */
export function tokenizerConfigFromGguf(metadata: GgufMetadataMap): Record<string, unknown> {
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens');
  const piece = (key: string): string | null => {
    const id = optionalId(metadata, key, tokens.length);
    return id === undefined ? null : tokens[id]!;
  };
  const config: Record<string, unknown> = {
    add_bos_token: addBos(metadata),
    add_eos_token: optionalBoolean(metadata, 'tokenizer.ggml.add_eos_token') ?? false,
    bos_token: piece('tokenizer.ggml.bos_token_id'),
    eos_token: piece('tokenizer.ggml.eos_token_id'),
    unk_token: piece('tokenizer.ggml.unknown_token_id'),
    pad_token: piece('tokenizer.ggml.padding_token_id'),
    clean_up_tokenization_spaces: false,
  };
  const template = metadata.get('tokenizer.chat_template');
  if (typeof template === 'string') config.chat_template = template;
  return config;
}

export function tokenizerFromGguf(metadata: GgufMetadataMap): Tokenizer {
  const { json, mergeRanks, scheme, stripsLeadingSpace } = convert(metadata);
  const size = stringArray(metadata, 'tokenizer.ggml.tokens').length;
  const template = metadata.get('tokenizer.chat_template');
  return new LibraryTokenizer({
    json,
    scheme,
    stripsLeadingSpace,
    mergeRanks,
    bosId: optionalId(metadata, 'tokenizer.ggml.bos_token_id', size),
    eosIds: eosIds(metadata, size),
    addBosByDefault: addBos(metadata),
    chatTemplate: typeof template === 'string' ? template : undefined,
  });
}

interface Conversion {
  json: TokenizerJson;
  mergeRanks: Map<string, number> | undefined;
  scheme: 'sentencepiece' | 'byte-level';
  stripsLeadingSpace: boolean;
}

function convert(metadata: GgufMetadataMap): Conversion {
  const model = metadata.get('tokenizer.ggml.model');
  const tokens = stringArray(metadata, 'tokenizer.ggml.tokens');
  const types = numberArray(metadata, 'tokenizer.ggml.token_type', tokens.length) ?? tokens.map(() => 1);
  const bosId = optionalId(metadata, 'tokenizer.ggml.bos_token_id', tokens.length);
  if (model === 'llama') {
    const addSpacePrefix = optionalBoolean(metadata, 'tokenizer.ggml.add_space_prefix') ?? true;
    const conversion: SpmConversion = spmTokenizerJson({
      pieces: tokens,
      scores: numberArray(metadata, 'tokenizer.ggml.scores', tokens.length) ?? tokens.map(() => 0),
      types,
      unkId: optionalId(metadata, 'tokenizer.ggml.unknown_token_id', tokens.length) ?? 0,
      bosId,
      addBos: addBos(metadata),
      addSpacePrefix,
    });
    return { ...conversion, scheme: 'sentencepiece', stripsLeadingSpace: addSpacePrefix };
  }
  if (model === 'gpt2') {
    const pre = metadata.get('tokenizer.ggml.pre');
    const json = bpeTokenizerJson({
      tokens,
      types,
      merges: stringArray(metadata, 'tokenizer.ggml.merges'),
      pre: typeof pre === 'string' ? pre : undefined,
      bosId,
      addBos: addBos(metadata),
    });
    return { json, mergeRanks: undefined, scheme: 'byte-level', stripsLeadingSpace: false };
  }
  throw new TesseraError(
    'TESSERA_ERR_TOKENIZER',
    `GGUF tokenizer.ggml.model is ${JSON.stringify(model)}; Tessera reads 'llama' (SentencePiece) and 'gpt2' (byte-level BPE) vocabularies — ` +
      'give the model as a Hugging Face directory with tokenizer.json instead',
  );
}

function addBos(metadata: GgufMetadataMap): boolean {
  const explicit = optionalBoolean(metadata, 'tokenizer.ggml.add_bos_token');
  // llama.cpp's default when the key is absent: SentencePiece adds BOS, BPE does not.
  return explicit ?? metadata.get('tokenizer.ggml.model') === 'llama';
}

/** EOS plus the other end-of-generation tokens llama.cpp stops on. */
function eosIds(metadata: GgufMetadataMap, size: number): number[] {
  const keys = ['tokenizer.ggml.eos_token_id', 'tokenizer.ggml.eot_token_id', 'tokenizer.ggml.eom_token_id'];
  const ids = keys.map((key) => optionalId(metadata, key, size)).filter((id): id is number => id !== undefined);
  return [...new Set(ids)];
}

function bad(key: string, what: string): TesseraError {
  return new TesseraError('TESSERA_ERR_TOKENIZER', `GGUF metadata ${key} ${what}; the file's tokenizer is damaged or incomplete, re-convert the model`);
}

function stringArray(metadata: GgufMetadataMap, key: string): string[] {
  const value = metadata.get(key);
  if (!Array.isArray(value)) throw bad(key, 'is missing or not an array');
  if (!value.every((item): item is string => typeof item === 'string')) throw bad(key, 'holds non-string entries');
  return value;
}

function numberArray(metadata: GgufMetadataMap, key: string, length: number): number[] | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length !== length) throw bad(key, `is not an array of ${length} numbers`);
  return value.map((item) => {
    if (typeof item === 'number') return item;
    if (typeof item === 'bigint') return Number(item);
    throw bad(key, 'holds non-numeric entries');
  });
}

function optionalId(metadata: GgufMetadataMap, key: string, size: number): number | undefined {
  const value = metadata.get(key);
  if (value === undefined) return undefined;
  const id = typeof value === 'bigint' ? Number(value) : value;
  if (typeof id !== 'number' || !Number.isInteger(id)) throw bad(key, 'is not an integer');
  // Some converters write -1 or an out-of-range id for "none".
  return id >= 0 && id < size ? id : undefined;
}

function optionalBoolean(metadata: GgufMetadataMap, key: string): boolean | undefined {
  const value = metadata.get(key);
  return typeof value === 'boolean' ? value : undefined;
}
