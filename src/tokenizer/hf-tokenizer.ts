/**
 * Hugging Face tokenizer.json (+ tokenizer_config.json) loading.
 */
import { readFileSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';
import { LibraryTokenizer, type TokenizerJson } from './library-tokenizer.js';
import type { PieceScheme } from './token-bytes.js';
import type { Tokenizer } from './tokenizer.js';

export function loadHfTokenizer(tokenizerJsonPath: string, tokenizerConfig: Record<string, unknown> = {}): Tokenizer {
  return tokenizerFromHfJson(readTokenizerJson(tokenizerJsonPath), tokenizerConfig);
}

/** The same from objects already in memory. */
export function tokenizerFromHfJson(json: TokenizerJson, tokenizerConfig: Record<string, unknown> = {}): Tokenizer {
  const idOf = (token: string | undefined): number | undefined => (token === undefined ? undefined : findId(json, token));
  const bosId = idOf(tokenName(tokenizerConfig.bos_token)) ?? postProcessorFirstId(json.post_processor);
  const eosId = idOf(tokenName(tokenizerConfig.eos_token));
  const scheme = pieceScheme(json.decoder);
  return new LibraryTokenizer({
    json,
    config: tokenizerConfig,
    scheme,
    stripsLeadingSpace: scheme === 'sentencepiece' && stripsLeadingSpace(json),
    bosId,
    eosIds: eosId === undefined ? [] : [eosId],
    addBosByDefault: addsBos(tokenizerConfig, json.post_processor, bosId),
    chatTemplate: chatTemplate(tokenizerConfig.chat_template),
  });
}

function readTokenizerJson(path: string): TokenizerJson {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_TOKENIZER', `cannot read ${path} (${(error as Error).message}); check the path of tokenizer.json`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_TOKENIZER', `${path} is not valid JSON (${(error as Error).message}); download tokenizer.json again`, { cause: error });
  }
  const model = (json as { model?: { vocab?: unknown } } | null)?.model;
  if (typeof json !== 'object' || json === null || typeof model !== 'object' || model === null || typeof model.vocab !== 'object') {
    throw new TesseraError('TESSERA_ERR_TOKENIZER', `${path} has no model.vocab; it is not a Hugging Face tokenizer.json — download the model's tokenizer.json`);
  }
  const full = json as Partial<TokenizerJson>;
  return {
    version: full.version ?? '1.0',
    truncation: null,
    padding: null,
    added_tokens: full.added_tokens ?? [],
    normalizer: full.normalizer ?? null,
    pre_tokenizer: full.pre_tokenizer ?? null,
    post_processor: full.post_processor ?? null,
    decoder: full.decoder ?? null,
    model: full.model!,
  };
}

/** tokenizer_config tokens are a string or an AddedToken-like object. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function findId(json: TokenizerJson, token: string): number | undefined {
  const added = json.added_tokens.find((entry) => entry.content === token);
  if (added) return added.id;
  const vocab = json.model.vocab;
  if (Array.isArray(vocab)) {
    const index = vocab.findIndex((entry) => Array.isArray(entry) && entry[0] === token);
    return index < 0 ? undefined : index;
  }
  return Object.prototype.hasOwnProperty.call(vocab, token) ? vocab[token] : undefined;
}

interface TemplatePiece {
  SpecialToken?: { id: string };
  Sequence?: unknown;
}

/** The id a TemplateProcessing post-processor puts before the text, if any (Llama's BOS). */
function postProcessorFirstId(processor: Record<string, unknown> | null): number | undefined {
  const template = findTemplate(processor);
  const first = (template?.single as TemplatePiece[] | undefined)?.[0]?.SpecialToken?.id;
  if (first === undefined) return undefined;
  const specials = template?.special_tokens as Record<string, { ids?: number[] }> | undefined;
  return specials?.[first]?.ids?.[0];
}

function findTemplate(processor: Record<string, unknown> | null): Record<string, unknown> | undefined {
  if (!processor) return undefined;
  if (processor.type === 'TemplateProcessing') return processor;
  if (processor.type === 'Sequence' && Array.isArray(processor.processors)) {
    for (const inner of processor.processors as Record<string, unknown>[]) {
      const found = findTemplate(inner);
      if (found) return found;
    }
  }
  return undefined;
}

function addsBos(config: Record<string, unknown>, processor: Record<string, unknown> | null, bosId: number | undefined): boolean {
  if (typeof config.add_bos_token === 'boolean') return config.add_bos_token && bosId !== undefined;
  return bosId !== undefined && postProcessorFirstId(processor) === bosId;
}

function chatTemplate(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // Newer configs hold named templates; 'default' is the chat one.
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((entry) => entry.name === 'default') ?? named[0];
    return typeof chosen?.template === 'string' ? chosen.template : undefined;
  }
  return undefined;
}

/** Which piece spelling the decoder undoes: ByteLevel → byte-level, ▁/ByteFallback/Metaspace → SentencePiece. */
function pieceScheme(decoder: Record<string, unknown> | null): PieceScheme {
  const types = decoderTypes(decoder);
  if (types.includes('ByteLevel')) return 'byte-level';
  if (types.includes('Metaspace') || types.includes('ByteFallback') || types.includes('Replace')) return 'sentencepiece';
  return 'plain';
}

function decoderTypes(decoder: Record<string, unknown> | null): string[] {
  if (!decoder) return [];
  const inner = Array.isArray(decoder.decoders) ? (decoder.decoders as Record<string, unknown>[]).flatMap(decoderTypes) : [];
  return [String(decoder.type), ...inner];
}

/** SentencePiece decoders drop the space their encoder prepended: a Strip of one leading space, or Metaspace with a prefix. */
function stripsLeadingSpace(json: TokenizerJson): boolean {
  const visit = (decoder: Record<string, unknown>): boolean => {
    if (decoder.type === 'Strip') return decoder.content === ' ' && Number(decoder.start) > 0;
    if (decoder.type === 'Metaspace') return decoder.prepend_scheme !== 'never' && decoder.add_prefix_space !== false;
    return Array.isArray(decoder.decoders) && (decoder.decoders as Record<string, unknown>[]).some(visit);
  };
  return json.decoder !== null && visit(json.decoder);
}
