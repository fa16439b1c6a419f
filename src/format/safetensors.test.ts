import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture } from '../testing/fixtures.js';
import { readTensor } from './tensor-store.js';
import { SafetensorsStore } from './safetensors.js';
import { writeSafetensors, type SafetensorsTensorSource } from './safetensors-writer.js';

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-st-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Bytes 0, 1, 2 … (mod 251) offset by `seed`, so every tensor's bytes differ. */
function pattern(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) % 251);
}

function source(name: string, dtype: SafetensorsTensorSource['dtype'], shape: number[], seed: number): SafetensorsTensorSource {
  const elements = shape.reduce((a, b) => a * b, 1);
  const bytes = pattern(elements * (dtype === 'f32' ? 4 : 2), seed);
  return { name, dtype, shape, data: () => bytes };
}

/** Writes a raw file: 8-byte header length, header text as given, then `data`. */
function writeRaw(path: string, header: string, data: Uint8Array = new Uint8Array(0), declaredLength?: number): void {
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(declaredLength ?? Buffer.byteLength(header)));
  writeFileSync(path, Buffer.concat([head, Buffer.from(header), data]));
}

test('write then read round-trips f32, f16 and bf16 tensors of odd shapes, with metadata and canonical names', (t) => {
  const path = join(tempDir(t), 'model.safetensors');
  const tensors = [
    source('model.layers.0.self_attn.q_proj.weight', 'f32', [3, 5], 1),
    source('model.norm.weight', 'f16', [7], 2),
    source('model.layers.1.mlp.experts.down_proj', 'bf16', [2, 3, 3], 3),
    source('some.scalar', 'f32', [], 4),
    source('empty.rows', 'f16', [0, 4], 5),
  ];
  writeSafetensors(path, tensors, { format: 'pt', note: 'tessera test' });

  const headerLength = Number(readFileSync(path).readBigUInt64LE(0));
  assert.equal((8 + headerLength) % 8, 0, 'data must start 8-byte aligned');

  const store = SafetensorsStore.open(path);
  t.after(() => store.close());
  assert.equal(store.format, 'safetensors');
  assert.deepEqual(store.metadata, { format: 'pt', note: 'tessera test' });
  assert.deepEqual(store.list().map((i) => i.name).sort(), [
    'blk.0.attn_q.weight', 'blk.1.ffn_down_exps.weight', 'empty.rows', 'output_norm.weight', 'some.scalar',
  ]);
  assert.deepEqual(store.get('blk.0.attn_q.weight'), { name: 'blk.0.attn_q.weight', dtype: 'f32', shape: [3, 5] });
  assert.deepEqual(store.get('output_norm.weight')?.dtype, 'f16');
  assert.deepEqual(store.get('blk.1.ffn_down_exps.weight')?.shape, [2, 3, 3]);
  assert.equal(store.sourceName('blk.0.attn_q.weight'), 'model.layers.0.self_attn.q_proj.weight');
  for (const [i, canonical] of ['blk.0.attn_q.weight', 'output_norm.weight', 'blk.1.ffn_down_exps.weight', 'some.scalar', 'empty.rows'].entries()) {
    assert.deepEqual(readTensor(store, canonical), tensors[i].data(), canonical);
  }
});

test('readRows reads only the requested rows and counts the bytes', (t) => {
  const path = join(tempDir(t), 'model.safetensors');
  const big = source('model.embed_tokens.weight', 'bf16', [100, 6], 9);
  writeSafetensors(path, [source('lm_head.weight', 'f32', [4, 6], 8), big]);
  const store = SafetensorsStore.open(path);
  t.after(() => store.close());
  assert.equal(store.bytesRead, 0, 'opening reads no tensor bytes');
  const rows = store.readRows('token_embd.weight', 10, 13);
  assert.deepEqual(rows, big.data().subarray(10 * 12, 13 * 12));
  assert.equal(store.bytesRead, 3 * 12);
  assert.equal(store.readRows('output.weight', 2, 2).byteLength, 0);
  assert.throws(() => store.readRows('token_embd.weight', 99, 101), { code: 'TESSERA_ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.readRows('blk.0.attn_k.weight', 0, 1), { code: 'TESSERA_ERR_MISSING_TENSOR' });
});

test('a sharded checkpoint is read through its index', (t) => {
  const dir = tempDir(t);
  const a = [source('model.embed_tokens.weight', 'f32', [5, 4], 1), source('model.layers.0.input_layernorm.weight', 'f32', [4], 2)];
  const b = [source('model.layers.0.mlp.down_proj.weight', 'bf16', [4, 6], 3), source('model.norm.weight', 'f32', [4], 4)];
  writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), a);
  writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), b);
  const weightMap = Object.fromEntries([
    ...a.map((s) => [s.name, 'model-00001-of-00002.safetensors']),
    ...b.map((s) => [s.name, 'model-00002-of-00002.safetensors']),
  ]);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));

  const store = SafetensorsStore.open(dir);
  t.after(() => store.close());
  assert.equal(store.paths.length, 2);
  assert.deepEqual(store.list().map((i) => i.name).sort(), ['blk.0.attn_norm.weight', 'blk.0.ffn_down.weight', 'output_norm.weight', 'token_embd.weight']);
  assert.deepEqual(store.readRows('blk.0.ffn_down.weight', 1, 3), b[0].data().subarray(12, 36));
  assert.deepEqual(readTensor(store, 'token_embd.weight'), a[0].data());

  const viaIndex = SafetensorsStore.open(join(dir, 'model.safetensors.index.json'));
  assert.equal(viaIndex.list().length, 4);
  viaIndex.close();

  weightMap['model.norm.weight'] = 'model-00001-of-00002.safetensors';
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
  assert.throws(() => SafetensorsStore.open(dir), { code: 'TESSERA_ERR_BAD_FORMAT', message: /model\.norm\.weight/ });

  weightMap['model.norm.weight'] = 'model-00003-of-00002.safetensors';
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: weightMap }));
  assert.throws(() => SafetensorsStore.open(dir), { code: 'TESSERA_ERR_FILE_NOT_FOUND', message: /model-00003/ });
});

test('corrupt and truncated files give coded errors', (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'x.safetensors');
  const tensor = (dtype: string, shape: number[], offsets: number[]) => JSON.stringify({ w: { dtype, shape, data_offsets: offsets } });

  writeRaw(path, tensor('I64', [2], [0, 16]), new Uint8Array(16));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_UNSUPPORTED_DTYPE', message: /I64/ });
  writeRaw(path, tensor('F8_E4M3', [2], [0, 2]), new Uint8Array(2));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_UNSUPPORTED_DTYPE', message: /F8_E4M3/ });

  writeRaw(path, tensor('F32', [2, 2], [0, 16]), new Uint8Array(12));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_TRUNCATED', message: /download it again/ });
  writeRaw(path, tensor('F32', [2, 2], [0, 16]), new Uint8Array(0), 4096);
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_TRUNCATED' });
  writeFileSync(path, Buffer.alloc(5));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_TRUNCATED' });

  writeRaw(path, tensor('F32', [2, 2], [0, 16]), new Uint8Array(16), 2 ** 40);
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_BAD_FORMAT', message: /not plausible/ });
  writeRaw(path, '{"w": {"dtype": "F32", "shape": [2,', new Uint8Array(16));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_BAD_FORMAT', message: /JSON/ });
  writeRaw(path, tensor('F32', [2, 2], [0, 12]), new Uint8Array(16));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_BAD_FORMAT', message: /needs 16/ });
  writeRaw(path, JSON.stringify({ 'model.norm.weight': { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, 'output_norm.weight': { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), new Uint8Array(8));
  assert.throws(() => SafetensorsStore.open(path), { code: 'TESSERA_ERR_BAD_FORMAT', message: /twice/ });

  assert.throws(() => SafetensorsStore.open(join(dir, 'absent.safetensors')), { code: 'TESSERA_ERR_FILE_NOT_FOUND' });
  assert.throws(() => SafetensorsStore.open(join(dir, 'empty-dir-does-not-exist')), { code: 'TESSERA_ERR_FILE_NOT_FOUND' });
});

test('the writer refuses data of the wrong length and leaves no file', (t) => {
  const path = join(tempDir(t), 'bad.safetensors');
  assert.throws(
    () => writeSafetensors(path, [{ name: 'w', dtype: 'f16', shape: [3], data: () => new Uint8Array(4) }]),
    { code: 'TESSERA_ERR_INVALID_ARGUMENT' },
  );
  assert.throws(() => readFileSync(path), { code: 'ENOENT' });
});

test('reads a real Mixtral fixture written by Hugging Face', (t) => {
  const path = fixture(t, 'moe-fixtures/gqa_mixtral.safetensors');
  if (!path) return;
  const store = SafetensorsStore.open(path);
  t.after(() => store.close());
  assert.deepEqual(store.get('token_embd.weight')?.shape, [48, 32]);
  assert.deepEqual(store.get('output.weight')?.shape, [48, 32]);
  assert.deepEqual(store.get('blk.1.attn_k.weight')?.shape, [16, 32]);
  assert.deepEqual(store.get('blk.0.ffn_gate_up_exps.weight')?.shape, [4, 128, 32], 'packed experts keep their layout');
  const file = readFileSync(path);
  const dataStart = 8 + Number(file.readBigUInt64LE(0));
  // lm_head.weight is first in the file, at data offset 0; the embedding follows at 6144.
  assert.deepEqual(store.readRows('token_embd.weight', 2, 3), new Uint8Array(file.subarray(dataStart + 6144 + 2 * 128, dataStart + 6144 + 3 * 128)));
  assert.deepEqual(store.readRows('output.weight', 0, 1), new Uint8Array(file.subarray(dataStart, dataStart + 128)));
});
