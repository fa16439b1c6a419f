import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { GgufValue } from '../format/gguf-types.js';
import { readGgufHeader } from '../format/gguf-reader.js';
import { fixture } from '../testing/fixtures.js';
import { tokenizerFromGguf } from './gguf-tokenizer.js';
import { VARIED_TEXTS } from './sample-texts.js';
import { StreamDecoder } from './stream-decoder.js';
import { TokenType } from './token-type.js';
import type { Tokenizer } from './tokenizer.js';

/** A tiny SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then scored pieces. */
function tinySentencePiece(): Tokenizer {
  const pieces = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let byte = 0; byte < 256; byte++) {
    pieces.push(`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.byte);
  }
  const scored: [string, number][] = [['▁', -1], ['a', -2], ['b', -2], ['ba', -3], ['ab', -3], ['▁a', -4], ['h', -5], ['i', -5], ['hi', -6], ['▁hi', -7]];
  const scores = pieces.map(() => 0);
  for (const [piece, score] of scored) {
    pieces.push(piece);
    scores.push(score);
    types.push(TokenType.normal);
  }
  return tokenizerFromGguf(
    new Map<string, GgufValue>([
      ['tokenizer.ggml.model', 'llama'],
      ['tokenizer.ggml.tokens', pieces],
      ['tokenizer.ggml.scores', scores],
      ['tokenizer.ggml.token_type', types],
      ['tokenizer.ggml.bos_token_id', 1],
      ['tokenizer.ggml.eos_token_id', 2],
      ['tokenizer.ggml.unknown_token_id', 0],
    ]),
  );
}

/** No lone surrogates (String.prototype.isWellFormed is newer than our lib target). */
const isWellFormed = (text: string): boolean => !/\p{Surrogate}/u.test(text);

function streamAll(tokenizer: Tokenizer, ids: readonly number[]): string[] {
  const decoder = new StreamDecoder(tokenizer);
  return [...ids.map((id) => decoder.push(id)), decoder.flush()];
}

const idOf = (tokenizer: Tokenizer, piece: string): number => {
  for (let id = 0; id < tokenizer.vocabSize; id++) if (tokenizer.tokenText(id) === piece) return id;
  throw new Error(`no piece ${piece}`);
};

test('SentencePiece merges by score and breaks ties leftmost, with byte fallback', () => {
  const tokenizer = tinySentencePiece();
  const [ab, ba, a, spaceA, spaceHi] = ['ab', 'ba', 'a', '▁a', '▁hi'].map((piece) => idOf(tokenizer, piece));
  // 'ab' and 'ba' score the same; 'ba' comes first in the vocabulary, yet the leftmost pair wins.
  assert.deepEqual(tokenizer.encode('aba', { addBos: false }).slice(1), [ab!, a!]);
  assert.deepEqual(tokenizer.encode('bab', { addBos: false }).slice(1), [ba!, idOf(tokenizer, 'b')]);
  assert.deepEqual(tokenizer.encode('a hi', { addBos: false }), [spaceA!, spaceHi!]);
  // 'z' and '😀' are not pieces: their UTF-8 bytes become byte tokens (byte + 3).
  assert.deepEqual(tokenizer.encode('z😀', { addBos: false }).slice(1), [0x7a + 3, 0xf0 + 3, 0x9f + 3, 0x98 + 3, 0x80 + 3]);
  assert.equal(tokenizer.decode(tokenizer.encode('a hi z😀')), 'a hi z😀');
});

test('StreamDecoder never emits half a character of an emoji split over byte tokens', () => {
  const tokenizer = tinySentencePiece();
  const ids = tokenizer.encode('hi😀a😀', { addBos: false });
  const chunks = streamAll(tokenizer, ids);
  for (const chunk of chunks) {
    assert.ok(!chunk.includes('\uFFFD'), `chunk ${JSON.stringify(chunk)} holds a replacement character`);
    assert.ok(isWellFormed(chunk), `chunk ${JSON.stringify(chunk)} is not well-formed UTF-16`);
  }
  // The emoji comes out whole, on its fourth byte token.
  assert.ok(chunks.includes('😀'));
  assert.equal(chunks.join(''), tokenizer.decode(ids));
  assert.equal(chunks.join(''), 'hi😀a😀');
});

test('StreamDecoder drops the leading space exactly as decode does, and skips control tokens', () => {
  const tokenizer = tinySentencePiece();
  const spaceHi = idOf(tokenizer, '▁hi');
  const ids = [1, spaceHi, spaceHi, 2];
  assert.equal(tokenizer.decode(ids), 'hi hi');
  assert.deepEqual(streamAll(tokenizer, ids), ['', 'hi', ' hi', '', '']);
  assert.equal(tokenizer.decode(ids, { skipSpecial: false }), '<s> hi hi</s>');
});

test('StreamDecoder flushes an unfinished character as U+FFFD, like decode', () => {
  const tokenizer = tinySentencePiece();
  const ids = [idOf(tokenizer, 'a'), 0xf0 + 3, 0x9f + 3];
  const chunks = streamAll(tokenizer, ids);
  assert.deepEqual(chunks, ['a', '', '', '\uFFFD']);
  assert.equal(chunks.join(''), tokenizer.decode(ids));
});

test('StreamDecoder output equals decode for the Llama 2 vocabulary on varied text', (t) => {
  const path = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  if (!path) return;
  const tokenizer = tokenizerFromGguf(readGgufHeader(path).metadata);
  for (const text of VARIED_TEXTS) {
    const ids = tokenizer.encode(text);
    const chunks = streamAll(tokenizer, ids);
    assert.equal(chunks.join(''), tokenizer.decode(ids), JSON.stringify(text));
    for (const chunk of chunks) assert.ok(isWellFormed(chunk));
  }
});
