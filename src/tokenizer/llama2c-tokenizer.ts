/**
 * llama2.c tokenizer.bin: int32 max_token_length, then per token a float32
 * score, an int32 byte length and the piece bytes. It is a SentencePiece
 * vocabulary exported with real spaces instead of ▁, so it goes through the
 * SentencePiece path after putting the ▁ back. run.c's encode (dummy prefix
 * space, byte fallback, merge the best-scoring pair, leftmost on ties) is
 * what that path computes. BOS is 1 and EOS 2, and BOS is added by default.
 */
import { readFileSync } from 'node:fs';
import { TesseraError } from '../core/errors.js';
import { LibraryTokenizer } from './library-tokenizer.js';
import { spmTokenizerJson } from './spm-vocabulary.js';
import { isBytePiece } from './token-bytes.js';
import { TokenType } from './token-type.js';
import type { Tokenizer } from './tokenizer.js';

export interface Llama2cVocabulary {
  maxTokenLength: number;
  pieces: string[];
  scores: number[];
}

const BOS_ID = 1;
const EOS_ID = 2;

export function tokenizerFromLlama2c(path: string, vocabSize: number): Tokenizer {
  const vocabulary = readLlama2cVocabulary(readFile(path), vocabSize, path);
  const pieces = vocabulary.pieces.map((piece) => piece.replaceAll(' ', '\u2581'));
  const types = pieces.map((piece, id) => tokenType(piece, id));
  const { json, mergeRanks } = spmTokenizerJson({
    pieces,
    scores: vocabulary.scores,
    types,
    unkId: 0,
    bosId: BOS_ID,
    addBos: true,
    addSpacePrefix: true,
  });
  return new LibraryTokenizer({
    json,
    mergeRanks,
    scheme: 'sentencepiece',
    stripsLeadingSpace: true,
    bosId: BOS_ID,
    eosIds: [EOS_ID],
    addBosByDefault: true,
    chatTemplate: undefined,
  });
}

export function readLlama2cVocabulary(bytes: Uint8Array, vocabSize: number, path = 'tokenizer.bin'): Llama2cVocabulary {
  const fail = (what: string): TesseraError =>
    new TesseraError(
      'TESSERA_ERR_TOKENIZER',
      `${path} is not a llama2.c tokenizer for ${vocabSize} tokens (${what}); pass the tokenizer.bin that belongs to this checkpoint`,
    );
  if (!Number.isInteger(vocabSize) || vocabSize < 3) throw fail('the vocabulary size must be at least 3');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder('utf-8', { ignoreBOM: true });
  if (bytes.byteLength < 4) throw fail('the file is shorter than its header');
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1024) throw fail(`max_token_length ${maxTokenLength} is implausible`);
  const pieces: string[] = [];
  const scores: number[] = [];
  let offset = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (offset + 8 > bytes.byteLength) throw fail(`the file ends at token ${id}`);
    scores.push(view.getFloat32(offset, true));
    const length = view.getInt32(offset + 4, true);
    offset += 8;
    if (length < 0 || length > maxTokenLength || offset + length > bytes.byteLength) throw fail(`token ${id} has a bad length ${length}`);
    pieces.push(text.decode(bytes.subarray(offset, offset + length)));
    offset += length;
  }
  return { maxTokenLength, pieces, scores };
}

function tokenType(piece: string, id: number): number {
  if (id === 0) return TokenType.unknown;
  if (id === BOS_ID || id === EOS_ID) return TokenType.control;
  return isBytePiece(piece) ? TokenType.byte : TokenType.normal;
}

function readFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TesseraError(
      'TESSERA_ERR_TOKENIZER',
      `cannot read the llama2.c tokenizer ${path} (${(error as Error).message}); pass --tokenizer with the path of tokenizer.bin`,
      { cause: error },
    );
  }
}
