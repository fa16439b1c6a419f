import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../testing/fixtures.js';
import { TesseraError, type ErrorCode } from '../core/errors.js';
import { GgufStore, readGgufHeader, getNumber, getString, getArray, GgufValueType } from './gguf-reader.js';
import { writeGguf } from './gguf-writer.js';

const TINY = 'tiny-random-llama2/llama-2-tiny-random.gguf';

function withTemp(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-gguf-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertCode(fn: () => unknown, code: ErrorCode, mention?: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TesseraError, `expected a TesseraError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (mention) assert.ok(e.message.includes(mention), `"${e.message}" should mention ${mention}`);
    return true;
  });
}

test('reads the tiny Llama 2 GGUF fixture', (t: TestContext) => {
  const path = fixture(t, TINY);
  if (!path) return;
  const header = readGgufHeader(path);
  assert.equal(header.version, 3);
  assert.equal(header.tensors.length, 12);
  assert.equal(header.metadata.size, 18);
  assert.equal(header.alignment, 32);
  assert.equal(getString(header.metadata, 'general.architecture'), 'llama');
  assert.equal(getNumber(header.metadata, 'llama.embedding_length'), 8);
  assert.equal(getNumber(header.metadata, 'llama.block_count'), 1);
  assert.equal(getNumber(header.metadata, 'llama.feed_forward_length'), 32);
  assert.equal(getNumber(header.metadata, 'llama.attention.head_count_kv'), 2);
  assert.equal(getNumber(header.metadata, 'llama.context_length'), 4096);
  assert.equal(getNumber(header.metadata, 'general.file_type'), 1);
  assert.equal(Math.fround(1e-5), getNumber(header.metadata, 'llama.attention.layer_norm_rms_epsilon'));
  assert.equal(getNumber(header.metadata, 'tokenizer.ggml.bos_token_id'), 1);
  const tokens = getArray(header.metadata, 'tokenizer.ggml.tokens');
  assert.equal(tokens.length, 32000);
  assert.deepEqual(tokens.slice(0, 3), ['<unk>', '<s>', '</s>']);
  assert.equal(tokens[3], '<0x00>');
  assert.equal(header.types.get('tokenizer.ggml.scores')?.arrayType, GgufValueType.FLOAT32);
  const byName = new Map(header.tensors.map((x) => [x.name, x]));
  assert.deepEqual(byName.get('token_embd.weight')?.shape, [32000, 8]);
  assert.equal(byName.get('token_embd.weight')?.dtype, 'f16');
  assert.deepEqual(byName.get('blk.0.ffn_down.weight')?.shape, [8, 32]);
  assert.deepEqual(byName.get('blk.0.ffn_up.weight')?.shape, [32, 8]);
  assert.equal(byName.get('output_norm.weight')?.dtype, 'f32');
  const last = header.tensors[header.tensors.length - 1];
  assert.equal(last.offset + last.byteLength, header.fileSize);
});

test('GgufStore.readRows reads exactly the bytes of the row range', (t: TestContext) => {
  const path = fixture(t, TINY);
  if (!path) return;
  const whole = readFileSync(path);
  const store = new GgufStore(path);
  try {
    const embd = store.tensor('token_embd.weight')!;
    const rows = store.readRows('token_embd.weight', 100, 103);
    assert.equal(rows.length, 3 * 8 * 2);
    assert.deepEqual(rows, new Uint8Array(whole.subarray(embd.offset + 100 * 16, embd.offset + 103 * 16)));
    assert.equal(store.bytesRead, 48);
    const norm = store.readRows('output_norm.weight', 0, 1);
    assert.equal(store.bytesRead, 48 + 32);
    assert.equal(norm.length, 32);
    assert.equal(store.readRows('blk.0.attn_q.weight', 2, 2).length, 0);
    assertCode(() => store.readRows('token_embd.weight', 0, 32001), 'TESSERA_ERR_INVALID_ARGUMENT');
    assertCode(() => store.readRows('nope.weight', 0, 1), 'TESSERA_ERR_MISSING_TENSOR', 'nope.weight');
  } finally {
    store.close();
  }
});

test('a truncated fixture copy is TESSERA_ERR_TRUNCATED, wherever it is cut', (t: TestContext) => {
  const path = fixture(t, TINY);
  if (!path) return;
  const whole = readFileSync(path);
  withTemp((dir) => {
    for (const cut of [whole.length - 1, 1_000_000, 724_416, 600_000, 30, 6]) {
      const copy = join(dir, `cut-${cut}.gguf`);
      writeFileSync(copy, whole.subarray(0, cut));
      assertCode(() => readGgufHeader(copy), 'TESSERA_ERR_TRUNCATED', 'download it again');
    }
  });
});

test('missing files, bad magic, v1, big-endian and absurd counts give coded errors', (t: TestContext) => {
  assertCode(() => readGgufHeader('/no/such/file.gguf'), 'TESSERA_ERR_FILE_NOT_FOUND');
  assertCode(() => new GgufStore('/no/such/file.gguf'), 'TESSERA_ERR_FILE_NOT_FOUND');
  withTemp((dir) => {
    const header = (magic: number, version: number, tensors: bigint, kvs: bigint): Buffer => {
      const b = Buffer.alloc(4096);
      b.writeUInt32LE(magic, 0);
      b.writeUInt32LE(version, 4);
      b.writeBigUInt64LE(tensors, 8);
      b.writeBigUInt64LE(kvs, 16);
      return b;
    };
    const cases: Array<[string, Buffer, ErrorCode, string]> = [
      ['magic', header(0x12345678, 3, 0n, 0n), 'TESSERA_ERR_BAD_FORMAT', 'magic'],
      ['v1', header(0x46554747, 1, 0n, 0n), 'TESSERA_ERR_BAD_FORMAT', 'version 1'],
      ['v9', header(0x46554747, 9, 0n, 0n), 'TESSERA_ERR_BAD_FORMAT', 'version 9'],
      ['big-endian', header(0x46554747, 0x03000000, 0n, 0n), 'TESSERA_ERR_BAD_FORMAT', 'big-endian'],
      ['tensors', header(0x46554747, 3, 1n << 40n, 0n), 'TESSERA_ERR_BAD_FORMAT', 'tensors'],
      ['kvs', header(0x46554747, 3, 0n, 1n << 62n), 'TESSERA_ERR_BAD_FORMAT', 'metadata'],
    ];
    for (const [name, bytes, code, mention] of cases) {
      const file = join(dir, `${name}.gguf`);
      writeFileSync(file, bytes);
      assertCode(() => readGgufHeader(file), code, mention);
    }
  });
  const path = fixture(t, TINY);
  if (!path) return;
  withTemp((dir) => {
    const bytes = Buffer.from(readFileSync(path));
    // The first key's length (offset 24) claims more bytes than the file holds.
    bytes.writeBigUInt64LE(1n << 40n, 24);
    const file = join(dir, 'string.gguf');
    writeFileSync(file, bytes);
    assertCode(() => readGgufHeader(file), 'TESSERA_ERR_BAD_FORMAT', 'string');
  });
});

test('an unsupported ggml type is TESSERA_ERR_UNSUPPORTED_DTYPE naming the type and the tensor', () => {
  withTemp((dir) => {
    const path = join(dir, 'q5k.gguf');
    writeGguf(path, {
      metadata: [],
      tensors: [{ name: 'blk.0.ffn_up.weight', dtype: 'f32', shape: [1, 8], data: () => new Uint8Array(32) }],
    });
    const bytes = readFileSync(path);
    // Tensor info: after 24-byte header, name (8 + 19 bytes), n_dims (4), ne (2 × 8), then the type id.
    const typeOffset = 24 + 8 + 'blk.0.ffn_up.weight'.length + 4 + 16;
    assert.equal(bytes.readUInt32LE(typeOffset), 0);
    for (const [id, name] of [[13, 'Q5_K'], [16, 'IQ2_XXS'], [3, 'Q4_1'], [999, 'unknown type 999']] as const) {
      bytes.writeUInt32LE(id, typeOffset);
      writeFileSync(path, bytes);
      assertCode(() => readGgufHeader(path), 'TESSERA_ERR_UNSUPPORTED_DTYPE', name);
      assertCode(() => readGgufHeader(path), 'TESSERA_ERR_UNSUPPORTED_DTYPE', 'blk.0.ffn_up.weight');
    }
  });
});
