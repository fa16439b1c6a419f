import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGgufHeader } from '../format/gguf-reader.js';
import { fixture } from '../testing/fixtures.js';
import { TesseraError } from '../core/errors.js';
import { tokenizerFromGguf, tokenizerJsonFromGguf } from './gguf-tokenizer.js';
import { loadHfTokenizer, tokenizerFromHfJson } from './hf-tokenizer.js';
import { VARIED_TEXTS } from './sample-texts.js';

test('unreadable or foreign tokenizer.json files are TESSERA_ERR_TOKENIZER', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-hf-'));
  try {
    const isTokenizerError = (error: unknown): boolean => error instanceof TesseraError && error.code === 'TESSERA_ERR_TOKENIZER';
    assert.throws(() => loadHfTokenizer(join(dir, 'absent.json')), isTokenizerError);
    writeFileSync(join(dir, 'broken.json'), '{"model": {');
    assert.throws(() => loadHfTokenizer(join(dir, 'broken.json')), /not valid JSON/);
    writeFileSync(join(dir, 'config.json'), '{"architectures": ["LlamaForCausalLM"]}');
    assert.throws(() => loadHfTokenizer(join(dir, 'config.json')), /not a Hugging Face tokenizer.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a Metaspace (non-legacy) SentencePiece tokenizer.json and tokenizer_config token objects are understood', (t) => {
  const path = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  if (!path) return;
  const metadata = readGgufHeader(path).metadata;
  const reference = tokenizerFromGguf(metadata);
  const json = tokenizerJsonFromGguf(metadata);
  json.normalizer = null;
  json.pre_tokenizer = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
  json.decoder = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false };
  json.post_processor = null;
  const tokenizer = tokenizerFromHfJson(json, {
    bos_token: { content: '<s>', special: true },
    eos_token: '</s>',
    add_bos_token: true,
    chat_template: [{ name: 'tool_use', template: 'T' }, { name: 'default', template: 'D' }],
  });
  assert.equal(tokenizer.bosId, 1);
  assert.deepEqual(tokenizer.eosIds, [2]);
  assert.equal(tokenizer.addBosByDefault, true);
  assert.equal(tokenizer.chatTemplate, 'D');
  assert.equal(tokenizer.stripsLeadingSpace, true);
  // Metaspace adds no ▁ to text that already starts with a space (HF's rule), so those texts differ by design.
  for (const text of VARIED_TEXTS.filter((text) => !text.startsWith(' '))) {
    const ids = reference.encode(text, { parseSpecial: false });
    assert.deepEqual(tokenizer.encode(text, { parseSpecial: false }), ids, JSON.stringify(text));
    assert.equal(tokenizer.decode(ids), reference.decode(ids));
  }
});
