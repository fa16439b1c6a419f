import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GgufValue } from '../format/gguf-types.js';
import { tokenizerConfigFromGguf, tokenizerFromGguf, tokenizerJsonFromGguf } from './gguf-tokenizer.js';
import { loadHfTokenizer } from './hf-tokenizer.js';
import { byteLevelAlphabet, byteLevelEncode } from './token-bytes.js';
import { TokenType } from './token-type.js';

/** 256 byte tokens (id = byte value), a few merges, and Qwen-style special tokens. */
function smallByteLevelVocabulary(pre: string): Map<string, GgufValue> {
  const tokens = byteLevelAlphabet();
  const merges = ['Ġ t', 'h e', 'Ġt he', 'l l', '1 2'];
  tokens.push('Ġt', 'he', 'Ġthe', 'll', '12'); // 256..260
  tokens.push('<|im_start|>', '<|im_end|>', '<think>', '<|endoftext|>'); // 261..264
  const types = tokens.map((_, id) => (id === 263 ? TokenType.userDefined : id >= 261 ? TokenType.control : TokenType.normal));
  return new Map<string, GgufValue>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', pre],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', merges],
    ['tokenizer.ggml.bos_token_id', 264],
    ['tokenizer.ggml.eos_token_id', 262],
    ['tokenizer.ggml.add_bos_token', false],
    ['tokenizer.chat_template', '{{ messages[0].content }}'],
  ]);
}

const ids = (text: string): number[] => Array.from(Buffer.from(text));

test('the small vocabulary spells every byte with the byte-level alphabet', () => {
  const tokens = smallByteLevelVocabulary('qwen2').get('tokenizer.ggml.tokens') as string[];
  assert.equal(new Set(tokens.slice(0, 256)).size, 256);
  assert.equal(tokens[0x20], 'Ġ');
  assert.equal(tokens[0x0a], 'Ċ');
  assert.equal(tokens[0xe9], 'é');
  assert.equal(tokens[0xad], 'Ń');
  assert.equal(tokens[0x7f], 'ġ');
  assert.equal(byteLevelEncode(' é'), 'ĠÃ©');
});

test('byte-level BPE applies merges by rank inside pre-tokenized words', () => {
  const tokenizer = tokenizerFromGguf(smallByteLevelVocabulary('qwen2'));
  assert.equal(tokenizer.vocabSize, 265);
  assert.equal(tokenizer.addBosByDefault, false);
  assert.equal(tokenizer.stripsLeadingSpace, false);
  assert.equal(tokenizer.chatTemplate, '{{ messages[0].content }}');
  assert.deepEqual(tokenizer.encode(' the'), [258]);
  assert.deepEqual(tokenizer.encode('the hello'), [ids('t')[0], 257, 0x20, 257, 259, ids('o')[0]]);
  assert.deepEqual(tokenizer.encode('the', { addBos: true }), [264, ids('t')[0], 257]);
  assert.deepEqual(tokenizer.encode('é😀'), ids('é😀'));
  assert.deepEqual(tokenizer.encode(''), []);
  for (const text of ['the hello', ' leading and trailing ', 'é😀 中文\n\ttabs', '']) {
    assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  }
  assert.deepEqual([...tokenizer.tokenBytes(258)], ids(' the'));
  assert.deepEqual([...tokenizer.tokenBytes(0xe9)], [0xe9]);
  assert.equal(tokenizer.tokenText(258), 'Ġthe');
});

test('the pre-tokenizer follows tokenizer.ggml.pre (digits: one at a time for qwen2, three for llama-bpe)', () => {
  assert.deepEqual(tokenizerFromGguf(smallByteLevelVocabulary('qwen2')).encode('12345'), ids('12345'));
  assert.deepEqual(tokenizerFromGguf(smallByteLevelVocabulary('llama-bpe')).encode('12345'), [260, ...ids('345')]);
  assert.deepEqual(tokenizerFromGguf(smallByteLevelVocabulary('default')).encode('12345'), [260, ...ids('345')]);
});

test('special tokens are parsed by default, kept as text when asked, and left out of decoded text', () => {
  const tokenizer = tokenizerFromGguf(smallByteLevelVocabulary('qwen2'));
  const prompt = '<|im_start|>user\nhi<|im_end|>';
  const parsed = tokenizer.encode(prompt);
  assert.deepEqual(parsed, [261, ...ids('user\nhi'), 262]);
  assert.ok(tokenizer.isSpecial(261) && tokenizer.isSpecial(262) && !tokenizer.isSpecial(263));
  assert.deepEqual(tokenizer.encode(prompt, { parseSpecial: false }), ids(prompt));
  // User-defined tokens always match, as in llama.cpp.
  assert.deepEqual(tokenizer.encode('<think>ok', { parseSpecial: false }), [263, ...ids('ok')]);
  assert.equal(tokenizer.decode(parsed), 'user\nhi');
  assert.equal(tokenizer.decode(parsed, { skipSpecial: false }), prompt);
  assert.equal(tokenizer.decode([263, ...ids('ok')]), '<think>ok');
  assert.deepEqual(tokenizer.eosIds, [262]);
  assert.equal(tokenizer.tokenBytes(262).length, 0);
});

test('the byte-level vocabulary survives a tokenizer.json round trip', () => {
  const metadata = smallByteLevelVocabulary('llama-bpe');
  const fromGguf = tokenizerFromGguf(metadata);
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bpe-'));
  try {
    const jsonPath = join(dir, 'tokenizer.json');
    writeFileSync(jsonPath, JSON.stringify(tokenizerJsonFromGguf(metadata)));
    const fromJson = loadHfTokenizer(jsonPath, tokenizerConfigFromGguf(metadata));
    assert.equal(fromJson.bosId, 264);
    assert.deepEqual(fromJson.eosIds, [262]);
    assert.equal(fromJson.addBosByDefault, false);
    assert.equal(fromJson.chatTemplate, '{{ messages[0].content }}');
    for (const text of ['<|im_start|>user\nthe hello 12345<|im_end|>', 'é😀 中文', ' the the']) {
      const expected = fromGguf.encode(text);
      assert.deepEqual(fromJson.encode(text), expected);
      assert.equal(fromJson.decode(expected), fromGguf.decode(expected));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
