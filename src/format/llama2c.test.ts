import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../testing/fixtures.js';
import { readTensor } from './tensor-store.js';
import { Llama2cStore, isLlama2cCheckpoint } from './llama2c.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-l2c-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function bytesAt(path: string, offset: number, length: number): Uint8Array {
  const fd = openSync(path, 'r');
  const buffer = Buffer.alloc(length);
  readSync(fd, buffer, 0, length, offset);
  closeSync(fd);
  return new Uint8Array(buffer);
}

/** A checkpoint whose k-th weight float is k, so a tensor's first value is its float offset. */
function writeCheckpoint(path: string, ints: number[], floats: number): void {
  const file = Buffer.alloc(28 + 4 * floats);
  ints.forEach((v, i) => file.writeInt32LE(v, 4 * i));
  for (let k = 0; k < floats; k++) file.writeFloatLE(k, 28 + 4 * k);
  writeFileSync(path, file);
}

test('stories260K.bin: header, tensor list and shapes', (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const store = new Llama2cStore(path);
  t.after(() => store.close());
  assert.equal(store.format, 'llama2c');
  assert.deepEqual(store.header, {
    dim: 64, hiddenDim: 172, numLayers: 5, numHeads: 8, numKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true, exportVersion: 0,
  });
  assert.equal(store.list().length, 1 + 9 * 5 + 1, 'embedding, 9 tensors per layer, final norm; tied classifier');
  assert.equal(store.get('output.weight'), undefined);
  assert.ok(store.list().every((i) => i.dtype === 'f32'));
  const shapes: Record<string, number[]> = {
    'token_embd.weight': [512, 64], 'output_norm.weight': [64],
    'blk.4.attn_norm.weight': [64], 'blk.4.ffn_norm.weight': [64],
    'blk.4.attn_q.weight': [64, 64], 'blk.4.attn_k.weight': [32, 64], 'blk.4.attn_v.weight': [32, 64],
    'blk.4.attn_output.weight': [64, 64],
    'blk.4.ffn_gate.weight': [172, 64], 'blk.4.ffn_up.weight': [172, 64], 'blk.4.ffn_down.weight': [64, 172],
  };
  for (const [name, shape] of Object.entries(shapes)) assert.deepEqual(store.get(name)?.shape, shape, name);
  assert.equal(store.get('blk.5.attn_q.weight'), undefined);
});

test('stories260K.bin: rows come from the byte offsets run.c computes', (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const store = new Llama2cStore(path);
  t.after(() => store.close());
  const floats = 4;
  // token_embedding [512, 64], then rms_att [5, 64].
  const rmsAtt = 28 + floats * 512 * 64;
  assert.deepEqual(store.readRows('blk.0.attn_norm.weight', 0, 1), bytesAt(path, rmsAtt, 64 * floats));
  assert.equal(store.bytesRead, 64 * floats);
  // wq [5, 64, 64] follows rms_att; rows 10..12 of layer 1.
  const wqLayer1 = rmsAtt + floats * (5 * 64 + 64 * 64);
  assert.deepEqual(store.readRows('blk.1.attn_q.weight', 10, 12), bytesAt(path, wqLayer1 + 10 * 64 * floats, 2 * 64 * floats));
  assert.equal(store.bytesRead, 64 * floats + 2 * 64 * floats, 'only the requested rows are read');
  // rms_final sits just before the two legacy RoPE tables (512 × 4 floats each) at the end of the file.
  const rmsFinal = 1_056_540 - floats * (2 * 512 * 4) - floats * 64;
  assert.deepEqual(readTensor(store, 'output_norm.weight'), bytesAt(path, rmsFinal, 64 * floats));
  // Norm weights of a trained model are positive-ish and not all equal: a sanity check that we did not land in a matrix.
  const normBytes = readTensor(store, 'output_norm.weight');
  assert.equal(normBytes.byteOffset, 0, 'rows own their buffer, so they can be viewed as float32 directly');
  const norm = new Float32Array(normBytes.buffer);
  assert.equal(norm.length, 64);
  assert.ok(norm.every((v) => Number.isFinite(v) && Math.abs(v) < 100));
});

test('an untied classifier is exposed as output.weight; the layout matches run.c', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'tiny.bin');
  // dim 8, hidden 12, 2 layers, 4 heads, 2 kv heads, vocab 10 (negative: untied), seq 6.
  const [dim, hidden, layers, kvDim, vocab, seq, headSize] = [8, 12, 2, 4, 10, 6, 2];
  const perLayer = dim + dim * dim + 2 * kvDim * dim + dim * dim + dim + 3 * dim * hidden;
  const total = vocab * dim + layers * perLayer + dim + seq * headSize + vocab * dim;
  writeCheckpoint(path, [dim, hidden, layers, 4, 2, -vocab, seq], total);
  const store = new Llama2cStore(path);
  t.after(() => store.close());
  assert.equal(store.header.sharedClassifier, false);
  assert.equal(store.header.vocabSize, vocab);
  const first = (name: string): number => new Float32Array(store.readRows(name, 0, 1).slice().buffer)[0];
  const embd = vocab * dim;
  const L = layers;
  assert.equal(first('token_embd.weight'), 0);
  assert.equal(first('blk.1.attn_norm.weight'), embd + dim);
  const wq = embd + L * dim;
  assert.equal(first('blk.1.attn_q.weight'), wq + dim * dim);
  const wk = wq + L * dim * dim;
  assert.equal(first('blk.0.attn_k.weight'), wk);
  const wv = wk + L * kvDim * dim;
  assert.equal(first('blk.1.attn_v.weight'), wv + kvDim * dim);
  const wo = wv + L * kvDim * dim;
  assert.equal(first('blk.1.attn_output.weight'), wo + dim * dim);
  const rmsFfn = wo + L * dim * dim;
  assert.equal(first('blk.1.ffn_norm.weight'), rmsFfn + dim);
  const w1 = rmsFfn + L * dim;
  assert.equal(first('blk.1.ffn_gate.weight'), w1 + hidden * dim);
  const w2 = w1 + L * hidden * dim;
  assert.equal(first('blk.1.ffn_down.weight'), w2 + dim * hidden);
  const w3 = w2 + L * dim * hidden;
  assert.equal(first('blk.1.ffn_up.weight'), w3 + hidden * dim);
  const rmsFinal = w3 + L * hidden * dim;
  assert.equal(first('output_norm.weight'), rmsFinal);
  const wcls = rmsFinal + dim + seq * headSize;
  assert.equal(first('output.weight'), wcls);
  assert.equal(new Float32Array(store.readRows('output.weight', 9, 10).slice().buffer)[7], total - 1);
});

test('a float32 "ak42" version 1 export is read with its own order', (t) => {
  const path = join(tempDir(t), 'v1.bin');
  const [dim, hidden, layers, kvDim, vocab, seq] = [8, 12, 2, 4, 10, 6];
  const L = layers;
  const total = L * dim * 2 + dim + vocab * dim + L * (2 * dim * dim + 2 * kvDim * dim + 3 * dim * hidden) + vocab * dim;
  const file = Buffer.alloc(256 + 4 * total);
  file.writeUInt32LE(0x616b3432, 0);
  file.writeInt32LE(1, 4);
  [dim, hidden, layers, 4, 2, vocab, seq].forEach((v, i) => file.writeInt32LE(v, 8 + 4 * i));
  file[36] = 0; // untied classifier
  for (let k = 0; k < total; k++) file.writeFloatLE(k, 256 + 4 * k);
  writeFileSync(path, file);
  assert.equal(isLlama2cCheckpoint(path), true);
  const store = new Llama2cStore(path);
  t.after(() => store.close());
  assert.equal(store.header.exportVersion, 1);
  assert.equal(store.header.sharedClassifier, false);
  const first = (name: string): number => new Float32Array(store.readRows(name, 0, 1).slice().buffer)[0];
  // export.py version1_export: norms first, then the embedding, then the matrices, then the classifier.
  assert.equal(first('blk.1.attn_norm.weight'), dim);
  assert.equal(first('blk.0.ffn_norm.weight'), L * dim);
  assert.equal(first('output_norm.weight'), 2 * L * dim);
  const embd = 2 * L * dim + dim;
  assert.equal(first('token_embd.weight'), embd);
  const wq = embd + vocab * dim;
  assert.equal(first('blk.1.attn_q.weight'), wq + dim * dim);
  const w1 = wq + L * (2 * dim * dim + 2 * kvDim * dim);
  assert.equal(first('blk.1.ffn_gate.weight'), w1 + hidden * dim);
  assert.equal(first('blk.0.ffn_up.weight'), w1 + 2 * L * hidden * dim);
  assert.equal(first('output.weight'), total - vocab * dim);
  writeFileSync(path, file.subarray(0, file.length - 4));
  assert.throws(() => new Llama2cStore(path), { code: 'TESSERA_ERR_TRUNCATED' });
});

test('truncated, padded and implausible checkpoints are rejected with coded errors', (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  const dir = tempDir(t);
  const bytes = readFileSync(path);
  const truncated = join(dir, 'truncated.bin');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 1000));
  assert.throws(() => new Llama2cStore(truncated), { code: 'TESSERA_ERR_TRUNCATED', message: /download it again/ });
  assert.equal(isLlama2cCheckpoint(truncated), true, 'sniffing still recognises a truncated file');
  const padded = join(dir, 'padded.bin');
  writeFileSync(padded, Buffer.concat([bytes, Buffer.alloc(16)]));
  assert.throws(() => new Llama2cStore(padded), { code: 'TESSERA_ERR_BAD_FORMAT' });
  const garbage = join(dir, 'garbage.bin');
  writeFileSync(garbage, Buffer.from('this is certainly not a llama2.c checkpoint at all'));
  assert.equal(isLlama2cCheckpoint(garbage), false);
  assert.throws(() => new Llama2cStore(garbage), { code: 'TESSERA_ERR_BAD_FORMAT', message: /not a llama2\.c checkpoint/ });
  const tiny = join(dir, 'tiny.bin');
  writeFileSync(tiny, Buffer.alloc(10));
  assert.throws(() => new Llama2cStore(tiny), { code: 'TESSERA_ERR_TRUNCATED' });
  assert.throws(() => new Llama2cStore(join(dir, 'absent.bin')), { code: 'TESSERA_ERR_FILE_NOT_FOUND' });
});

test('the int8 "ak42" v2 export is refused with a clear message', (t) => {
  const path = fixture(t, 'stories260K-q8.bin');
  if (!path) return;
  assert.equal(isLlama2cCheckpoint(path), true);
  assert.throws(() => new Llama2cStore(path), {
    code: 'TESSERA_ERR_UNSUPPORTED_DTYPE',
    message: /int8 llama2\.c export v2 is not supported; use the float32 \.bin/,
  });
});
