import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { readGgufHeader } from '../format/gguf-reader.js';
import type { GgufValue } from '../format/gguf-types.js';
import { fixture } from '../testing/fixtures.js';
import { TesseraError } from '../core/errors.js';
import { tokenizerConfigFromGguf, tokenizerFromGguf, tokenizerJsonFromGguf } from './gguf-tokenizer.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { VARIED_TEXTS } from './sample-texts.js';

const GGUF = 'tiny-random-llama2/llama-2-tiny-random.gguf';


test('GGUF Llama 2 vocabulary encodes and decodes exactly as llama.cpp', async (t) => {
  const path = fixture(t, GGUF);
  if (!path) return;
  const tokenizer = tokenizerFromGguf(readGgufHeader(path).metadata);
  assert.equal(tokenizer.vocabSize, 32000);
  assert.equal(tokenizer.bosId, 1);
  assert.deepEqual(tokenizer.eosIds, [2]);
  assert.equal(tokenizer.addBosByDefault, true);

  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  try {
    for (const text of VARIED_TEXTS) {
      // node-llama-cpp's tokenize never adds BOS.
      const llamaIds = model.tokenize(text, false);
      const expected = llamaIds.map(Number);
      const ids = tokenizer.encode(text, { addBos: false, parseSpecial: false });
      assert.deepEqual(ids, expected, `plain encode of ${JSON.stringify(text)}`);
      assert.deepEqual(tokenizer.encode(text, { parseSpecial: false }), [1, ...expected], 'BOS by default');
      const expectedSpecial = model.tokenize(text, true).map(Number);
      assert.deepEqual(tokenizer.encode(text, { addBos: false }), expectedSpecial, `special-parsing encode of ${JSON.stringify(text)}`);
      assert.equal(tokenizer.decode(ids), model.detokenize(llamaIds), `decode of ${JSON.stringify(text)}`);
    }
  } finally {
    await model.dispose();
    await llama.dispose();
  }
});

test('GGUF SentencePiece decode round-trips text and keeps control tokens out unless asked', (t) => {
  const path = fixture(t, GGUF);
  if (!path) return;
  const tokenizer = tokenizerFromGguf(readGgufHeader(path).metadata);
  for (const text of VARIED_TEXTS) {
    if (text.includes('\u0000')) continue;
    assert.equal(tokenizer.decode(tokenizer.encode(text, { parseSpecial: false })), text);
  }
  const ids = tokenizer.encode('Hi</s>', { addBos: true });
  assert.equal(ids.at(-1), 2);
  assert.ok(tokenizer.isSpecial(2) && !tokenizer.isSpecial(ids[1]!));
  assert.equal(tokenizer.decode(ids), 'Hi');
  assert.equal(tokenizer.decode(ids, { skipSpecial: false }), '<s> Hi</s>');
  assert.equal(tokenizer.tokenText(13), '<0x0A>');
  assert.deepEqual([...tokenizer.tokenBytes(13)], [0x0a]);
  assert.deepEqual([...tokenizer.tokenBytes(tokenizer.encode('▁the', { addBos: false })[0]!)], [...Buffer.from(' ')]);
  assert.throws(() => tokenizer.tokenBytes(-1), (error: unknown) => error instanceof TesseraError && error.code === 'TESSERA_ERR_INVALID_ARGUMENT');
  // Ids of padded embedding rows past the vocabulary decode to nothing rather than failing a stream.
  assert.equal(tokenizer.tokenBytes(32005).length, 0);
  assert.equal(tokenizer.decode([32005, 13]), '\n');
});

test('a tokenizer.json written from the GGUF vocabulary loads with loadHfTokenizer and gives the same ids', (t) => {
  const path = fixture(t, GGUF);
  if (!path) return;
  const metadata = readGgufHeader(path).metadata;
  const fromGguf = tokenizerFromGguf(metadata);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-tok-'));
  try {
    const jsonPath = join(dir, 'tokenizer.json');
    writeFileSync(jsonPath, JSON.stringify(tokenizerJsonFromGguf(metadata)));
    const config = JSON.parse(JSON.stringify(tokenizerConfigFromGguf(metadata))) as Record<string, unknown>;
    const fromJson = loadHfTokenizer(jsonPath, config);
    assert.equal(fromJson.vocabSize, 32000);
    assert.equal(fromJson.bosId, 1);
    assert.deepEqual(fromJson.eosIds, [2]);
    assert.equal(fromJson.addBosByDefault, true);
    assert.equal(fromJson.stripsLeadingSpace, true);
    for (const text of VARIED_TEXTS) {
      const ids = fromGguf.encode(text);
      assert.deepEqual(fromJson.encode(text), ids, JSON.stringify(text));
      assert.equal(fromJson.decode(ids), fromGguf.decode(ids));
    }
    // Without a config the BOS comes from the TemplateProcessing post-processor.
    const bare = loadHfTokenizer(jsonPath);
    assert.equal(bare.bosId, 1);
    assert.equal(bare.addBosByDefault, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('10 KB of text encodes and decodes back to itself', (t) => {
  const path = fixture(t, GGUF);
  if (!path) return;
  const tokenizer = tokenizerFromGguf(readGgufHeader(path).metadata);
  // Starts with a letter: SentencePiece decode drops one leading space by design.
  const text = `x${VARIED_TEXTS.join(' ').repeat(Math.ceil(10_000 / VARIED_TEXTS.join(' ').length))}`;
  const ids = tokenizer.encode(text, { addBos: false, parseSpecial: false });
  assert.ok(ids.length > 1000);
  assert.equal(tokenizer.decode(ids), text);
});

test('bad GGUF tokenizer metadata is a TESSERA_ERR_TOKENIZER that says what to do', () => {
  const isTokenizerError = (error: unknown): boolean => error instanceof TesseraError && error.code === 'TESSERA_ERR_TOKENIZER';
  const base = (entries: [string, GgufValue][]): Map<string, GgufValue> => new Map(entries);
  assert.throws(() => tokenizerFromGguf(base([['tokenizer.ggml.model', 'llama']])), isTokenizerError);
  assert.throws(() => tokenizerFromGguf(base([['tokenizer.ggml.model', 'rwkv'], ['tokenizer.ggml.tokens', ['a']]])), /Hugging Face directory/);
  assert.throws(
    () => tokenizerFromGguf(base([['tokenizer.ggml.model', 'llama'], ['tokenizer.ggml.tokens', ['a', 'b']], ['tokenizer.ggml.scores', [0]]])),
    isTokenizerError,
  );
  assert.throws(
    () =>
      tokenizerFromGguf(
        base([['tokenizer.ggml.model', 'gpt2'], ['tokenizer.ggml.tokens', ['a']], ['tokenizer.ggml.merges', []], ['tokenizer.ggml.pre', 'mystery']]),
      ),
    /pre-tokenizer 'mystery'/,
  );
});
