import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../testing/fixtures.js';
import { detectModelFormat } from './model-format.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-fmt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('detects GGUF files, llama2.c checkpoints and directories', (t) => {
  const gguf = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  const bin = fixture(t, 'stories260K.bin');
  const q8 = fixture(t, 'stories260K-q8.bin');
  if (!gguf || !bin || !q8) return;
  assert.equal(detectModelFormat(gguf), 'gguf');
  assert.equal(detectModelFormat(bin), 'llama2c');
  assert.equal(detectModelFormat(q8), 'llama2c', 'recognised, so opening it explains that int8 exports are unsupported');
  assert.equal(detectModelFormat(tempDir(t)), 'hf');
});

test('other files and missing paths give coded errors', (t) => {
  const dir = tempDir(t);
  assert.throws(() => detectModelFormat(join(dir, 'absent.gguf')), { code: 'TESSERA_ERR_FILE_NOT_FOUND' });
  const text = join(dir, 'notes.bin');
  writeFileSync(text, 'hello, this is a text file and no model at all');
  assert.throws(() => detectModelFormat(text), { code: 'TESSERA_ERR_BAD_FORMAT', message: /GGUF.*Hugging Face.*llama2\.c/ });
  const empty = join(dir, 'empty.bin');
  writeFileSync(empty, '');
  assert.throws(() => detectModelFormat(empty), { code: 'TESSERA_ERR_BAD_FORMAT' });
  const lone = join(dir, 'model.safetensors');
  writeFileSync(lone, Buffer.alloc(16));
  assert.throws(() => detectModelFormat(lone), { code: 'TESSERA_ERR_BAD_FORMAT', message: /directory/ });
});

test('a llama2.c tokenizer file is not mistaken for a model', (t) => {
  const tok = fixture(t, 'tok512.bin');
  if (!tok) return;
  assert.throws(() => detectModelFormat(tok), { code: 'TESSERA_ERR_BAD_FORMAT' });
});
