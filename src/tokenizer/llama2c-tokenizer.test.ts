import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readGgufHeader } from '../format/gguf-reader.js';
import { fixture } from '../testing/fixtures.js';
import { TesseraError } from '../core/errors.js';
import { tokenizerFromGguf } from './gguf-tokenizer.js';
import { readLlama2cVocabulary, tokenizerFromLlama2c } from './llama2c-tokenizer.js';
import { VARIED_TEXTS } from './sample-texts.js';
import { StreamDecoder } from './stream-decoder.js';

/** llama2.c run.c's encode, transcribed: an independent reference for the library path. */
function runcEncode(pieces: readonly string[], scores: readonly number[], text: string): number[] {
  const idOf = new Map<string, number>();
  pieces.forEach((piece, id) => idOf.set(piece, id));
  const tokens: number[] = [];
  if (text.length > 0) tokens.push(idOf.get(' ')!);
  for (const char of text) {
    const id = idOf.get(char);
    if (id !== undefined) tokens.push(id);
    else for (const byte of Buffer.from(char)) tokens.push(byte + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = idOf.get(pieces[tokens[i]!]! + pieces[tokens[i + 1]!]!);
      if (id !== undefined && scores[id]! > bestScore) {
        bestScore = scores[id]!;
        bestId = id;
        bestIndex = i;
      }
    }
    if (bestIndex === -1) return tokens;
    tokens.splice(bestIndex, 2, bestId);
  }
}

const ENGLISH = ['Once upon a time, there was a little girl named Lily.', 'She said, "I can\'t find it."\nThe end.', '', '  spaced   out  '];

test('tok512.bin encodes as run.c does and round-trips text', (t) => {
  const path = fixture(t, 'tok512.bin');
  if (!path) return;
  const tokenizer = tokenizerFromLlama2c(path, 512);
  const { pieces, scores, maxTokenLength } = readLlama2cVocabulary(readFileSync(path), 512);
  assert.equal(maxTokenLength, 7);
  assert.equal(tokenizer.vocabSize, 512);
  assert.equal(tokenizer.bosId, 1);
  assert.deepEqual(tokenizer.eosIds, [2]);
  for (const text of [...ENGLISH, ...VARIED_TEXTS]) {
    const ids = tokenizer.encode(text, { addBos: false, parseSpecial: false });
    assert.deepEqual(ids, runcEncode(pieces, scores, text), JSON.stringify(text));
    assert.deepEqual(tokenizer.encode(text, { parseSpecial: false }), [1, ...ids]);
    if (!text.includes('\u0000')) assert.equal(tokenizer.decode([1, ...ids]), text);
  }
});

test('tok512.bin decodes the stories260K golden generation, in one piece and streamed', (t) => {
  const path = fixture(t, 'tok512.bin');
  const goldenPath = fixture(t, 'stories260K.greedy.json');
  if (!path || !goldenPath) return;
  const golden = JSON.parse(readFileSync(goldenPath, 'utf8')) as { generated_ids: number[]; text: string };
  const tokenizer = tokenizerFromLlama2c(path, 512);
  assert.equal(tokenizer.decode(golden.generated_ids), golden.text);
  const stream = new StreamDecoder(tokenizer);
  const streamed = golden.generated_ids.map((id) => stream.push(id)).join('') + stream.flush();
  assert.equal(streamed, golden.text);
});

test('llama2.c tokenizer.bin (32000) agrees with the GGUF Llama 2 vocabulary', (t) => {
  const binPath = fixture(t, 'llama2-tokenizer/tokenizer.bin');
  const ggufPath = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  if (!binPath || !ggufPath) return;
  const fromBin = tokenizerFromLlama2c(binPath, 32000);
  const fromGguf = tokenizerFromGguf(readGgufHeader(ggufPath).metadata);
  for (const text of [...ENGLISH, ...VARIED_TEXTS]) {
    const ids = fromBin.encode(text, { parseSpecial: false });
    assert.deepEqual(ids, fromGguf.encode(text, { parseSpecial: false }), JSON.stringify(text));
    if (!text.includes('\u0000')) assert.equal(fromBin.decode(ids), text);
  }
});

test('a truncated or foreign tokenizer.bin is a TESSERA_ERR_TOKENIZER', (t) => {
  const path = fixture(t, 'tok512.bin');
  if (!path) return;
  const bytes = readFileSync(path);
  const isTokenizerError = (error: unknown): boolean => error instanceof TesseraError && error.code === 'TESSERA_ERR_TOKENIZER';
  assert.throws(() => readLlama2cVocabulary(bytes.subarray(0, 3000), 512), isTokenizerError);
  assert.throws(() => readLlama2cVocabulary(bytes, 32000), /belongs to this checkpoint/);
  assert.throws(() => readLlama2cVocabulary(new Uint8Array(8).fill(0xff), 512), isTokenizerError);
  assert.throws(() => tokenizerFromLlama2c('/nonexistent/tokenizer.bin', 512), isTokenizerError);
});
