/**
 * A SentencePiece vocabulary (pieces + scores, as in GGUF 'llama' and
 * llama2.c) as a tokenizer.json BPE model. SentencePiece BPE merges the
 * adjacent pair whose concatenation is the highest-scoring piece, leftmost
 * on ties (llama.cpp's llm_tokenizer_spm, llama2.c's encode). The same
 * result comes from BPE with every pair (a, b) such that a, b and ab are
 * pieces, ranked by the score of ab: the converters in HF transformers derive
 * merges the same way.
 */
import type { AddedTokenJson, TokenizerJson } from './library-tokenizer.js';
import { addedTokenKind, TokenType } from './token-type.js';

export interface SpmVocabulary {
  /** Pieces with ▁ for space, `<0xAB>` for byte tokens. */
  pieces: readonly string[];
  scores: readonly number[];
  types: readonly number[];
  unkId: number | undefined;
  bosId: number | undefined;
  addBos: boolean;
  addSpacePrefix: boolean;
}

export interface SpmConversion {
  json: TokenizerJson;
  /** Ranks by score, equal for equal scores, keyed as the library keys its merges. */
  mergeRanks: Map<string, number>;
}

interface Merge {
  left: string;
  right: string;
  score: number;
  id: number;
  leftId: number;
}

export function spmTokenizerJson(vocab: SpmVocabulary): SpmConversion {
  const idOf = new Map<string, number>();
  vocab.pieces.forEach((piece, id) => idOf.set(piece, id));
  const merges = deriveMerges(vocab, idOf);
  const json: TokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(vocab.pieces, vocab.types),
    normalizer: spmNormalizer(vocab.addSpacePrefix),
    pre_tokenizer: null,
    post_processor: bosPostProcessor(vocab.pieces, vocab.bosId, vocab.addBos),
    decoder: spmDecoder(vocab.addSpacePrefix),
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: vocab.unkId === undefined ? null : vocab.pieces[vocab.unkId],
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabObject(vocab.pieces),
      merges: merges.map((merge) => [merge.left, merge.right]),
    },
  };
  return { json, mergeRanks: scoreRanks(merges) };
}

function deriveMerges(vocab: SpmVocabulary, idOf: Map<string, number>): Merge[] {
  const merges: Merge[] = [];
  vocab.pieces.forEach((piece, id) => {
    // Byte pieces are spelled `<0xAB>` but stand for one byte: text never merges into them.
    if (vocab.types[id] === TokenType.byte) return;
    const chars = Array.from(piece);
    let offset = 0;
    for (let split = 1; split < chars.length; split++) {
      offset += chars[split - 1]!.length;
      const left = piece.slice(0, offset);
      const right = piece.slice(offset);
      const leftId = idOf.get(left);
      if (leftId !== undefined && idOf.has(right)) {
        merges.push({ left, right, score: vocab.scores[id] ?? 0, id, leftId });
      }
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.leftId - b.leftId);
  return merges;
}

function scoreRanks(merges: readonly Merge[]): Map<string, number> {
  const ranks = new Map<string, number>();
  let rank = -1;
  let previous = Number.NaN;
  for (const merge of merges) {
    if (merge.score !== previous) {
      rank++;
      previous = merge.score;
    }
    ranks.set(JSON.stringify([merge.left, merge.right]), rank);
  }
  return ranks;
}

/** A tokenizer.json vocab object; null prototype so a piece named `__proto__` stays a piece. */
export function vocabObject(pieces: readonly string[]): Record<string, number> {
  const vocab = Object.create(null) as Record<string, number>;
  pieces.forEach((piece, id) => {
    // llama.cpp keeps the last id of a repeated piece; so does this.
    vocab[piece] = id;
  });
  return vocab;
}

export function addedTokens(pieces: readonly string[], types: readonly number[]): AddedTokenJson[] {
  const added: AddedTokenJson[] = [];
  pieces.forEach((content, id) => {
    const kind = addedTokenKind(types[id] ?? TokenType.normal);
    if (kind === undefined || content.length === 0) return;
    added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: kind === 'special' });
  });
  return added;
}

export function bosPostProcessor(pieces: readonly string[], bosId: number | undefined, addBos: boolean): Record<string, unknown> | null {
  if (!addBos || bosId === undefined) return null;
  const bos = pieces[bosId]!;
  return {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [
      { SpecialToken: { id: bos, type_id: 0 } },
      { Sequence: { id: 'A', type_id: 0 } },
      { SpecialToken: { id: bos, type_id: 1 } },
      { Sequence: { id: 'B', type_id: 1 } },
    ],
    special_tokens: { [bos]: { id: bos, ids: [bosId], tokens: [bos] } },
  };
}

function spmNormalizer(addSpacePrefix: boolean): Record<string, unknown> {
  const replace = { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' };
  if (!addSpacePrefix) return replace;
  return { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, replace] };
}

function spmDecoder(addSpacePrefix: boolean): Record<string, unknown> {
  const decoders: Record<string, unknown>[] = [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
  ];
  if (addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return { type: 'Sequence', decoders };
}
