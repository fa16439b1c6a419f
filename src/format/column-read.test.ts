import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { byteSize } from '../core/dtype.js';
import { synthesize } from '../synth/synthesize.js';
import { fixture } from '../testing/fixtures.js';
import { GgufStore } from './gguf-reader.js';
import { Llama2cStore } from './llama2c.js';
import { matrixShape, type TensorStore } from './tensor-store.js';

/** Columns [start, end) of every row, cut out of the whole tensor's bytes. */
function expectedSlice(store: TensorStore, name: string, start: number, end: number): Uint8Array {
  const info = store.get(name)!;
  const { rows, cols } = matrixShape(info.shape);
  const whole = store.readRows(name, 0, rows);
  const rowBytes = byteSize(info.dtype, cols);
  const [skip, length] = [byteSize(info.dtype, start), byteSize(info.dtype, end - start)];
  const out = new Uint8Array(rows * length);
  for (let row = 0; row < rows; row++) out.set(whole.subarray(row * rowBytes + skip, row * rowBytes + skip + length), row * length);
  return out;
}

function checkSlice(store: TensorStore, name: string, start: number, end: number): void {
  const expected = expectedSlice(store, name, start, end);
  const before = store.bytesRead;
  assert.deepEqual(store.readColumns!(name, start, end), expected);
  assert.equal(store.bytesRead - before, expected.byteLength, 'reads exactly the slice');
}

test('llama2.c store reads column slices, an uneven last one included', (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const store = new Llama2cStore(path);
  try {
    checkSlice(store, 'blk.0.ffn_down.weight', 96, 172);
    checkSlice(store, 'blk.1.attn_output.weight', 0, 32);
  } finally {
    store.close();
  }
});

test('GGUF store reads whole-block Q8_0 column slices and refuses cuts through a block', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-columns-'));
  try {
    const out = join(dir, 'tiny.gguf');
    await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out, format: 'gguf', seed: 3, layers: 1 });
    const store = new GgufStore(out);
    try {
      const cols = store.get('blk.0.ffn_down.weight')!.shape[1];
      checkSlice(store, 'blk.0.ffn_down.weight', 32, cols);
      assert.throws(() => store.readColumns('blk.0.ffn_down.weight', 16, cols), { code: 'TESSERA_ERR_SHARD_CONSTRAINT' });
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GGUF store reads rows and column slices into a caller\'s array (strided), counting exactly the bytes read', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-columns-'));
  try {
    const out = join(dir, 'tiny.gguf');
    await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out, format: 'gguf', seed: 4, layers: 1 });
    const store = new GgufStore(out);
    try {
      const name = 'blk.0.ffn_down.weight';
      const { rows, cols } = matrixShape(store.get(name)!.shape);
      const slice = store.readColumns(name, 32, cols);
      const length = slice.byteLength / rows;
      // [rows, 7 + length + 5]: the slice lands at byte 7 of each wider row; the margins stay as filled.
      const stride = length + 12;
      const target = new Uint8Array(rows * stride).fill(0xab);
      const before = store.bytesRead;
      store.readColumnsInto(name, 32, cols, target, stride, 7);
      assert.equal(store.bytesRead - before, slice.byteLength);
      for (let row = 0; row < rows; row++) {
        assert.deepEqual(target.subarray(row * stride + 7, row * stride + 7 + length), slice.subarray(row * length, (row + 1) * length));
        assert.equal(target[row * stride], 0xab);
        assert.equal(target[row * stride + 7 + length], 0xab);
      }
      const band = store.readRows(name, 3, 9);
      const padded = new Uint8Array(band.byteLength + 10);
      store.readRowsInto(name, 3, 9, padded, 10);
      assert.deepEqual(padded.subarray(10), band);
      assert.throws(() => store.readRowsInto(name, 3, 9, padded, 11), { code: 'TESSERA_ERR_INTERNAL' });
      assert.throws(() => store.readColumnsInto(name, 32, cols, target, stride, 13), { code: 'TESSERA_ERR_INTERNAL' });
    } finally {
      store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
