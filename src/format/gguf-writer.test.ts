import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { byteSize, DTYPE_LAYOUTS, type DType } from '../core/dtype.js';
import { readGgufHeader, GgufStore, GgufValueType, getNumber, getString, getArray, getOptionalString } from './gguf-reader.js';
import { metadataEntries, writeGguf, type GgufValue, type GgufMetadataEntry, type GgufWriteTensor } from './gguf-writer.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape } from './tensor-store.js';
import { fixture } from '../testing/fixtures.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'tessera-gguf-'));
}

const METADATA: GgufMetadataEntry[] = [
  { key: 'u8', type: GgufValueType.UINT8, value: 250 },
  { key: 'i8', type: GgufValueType.INT8, value: -120 },
  { key: 'u16', type: GgufValueType.UINT16, value: 65000 },
  { key: 'i16', type: GgufValueType.INT16, value: -32000 },
  { key: 'u32', type: GgufValueType.UINT32, value: 4_000_000_000 },
  { key: 'i32', type: GgufValueType.INT32, value: -2_000_000_000 },
  { key: 'f32', type: GgufValueType.FLOAT32, value: 1.5 },
  { key: 'bool.t', type: GgufValueType.BOOL, value: true },
  { key: 'bool.f', type: GgufValueType.BOOL, value: false },
  { key: 'str', type: GgufValueType.STRING, value: 'héllo ▁wörld 🦙' },
  { key: 'str.empty', type: GgufValueType.STRING, value: '' },
  { key: 'u64', type: GgufValueType.UINT64, value: 2n ** 63n + 5n },
  { key: 'u64.small', type: GgufValueType.UINT64, value: 123456789012 },
  { key: 'i64', type: GgufValueType.INT64, value: -(2n ** 62n) },
  { key: 'f64', type: GgufValueType.FLOAT64, value: Math.PI },
  { key: 'arr.str', type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: ['<unk>', '', '▁the', '\u0000x'] },
  { key: 'arr.f32', type: GgufValueType.ARRAY, arrayType: GgufValueType.FLOAT32, value: [0, -1.25, 3.5] },
  { key: 'arr.i32', type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: [1, -2, 3] },
  { key: 'arr.u8', type: GgufValueType.ARRAY, arrayType: GgufValueType.UINT8, value: [0, 255] },
  { key: 'arr.bool', type: GgufValueType.ARRAY, arrayType: GgufValueType.BOOL, value: [true, false] },
  { key: 'arr.empty', type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: [] },
  { key: 'arr.nested', type: GgufValueType.ARRAY, arrayType: GgufValueType.ARRAY, value: [[1, 2], [3], ['a', 'b']] },
];

const ALL_DTYPES = Object.keys(DTYPE_LAYOUTS) as DType[];

function tensorsOfEveryDtype(): { tensors: GgufWriteTensor[]; bytes: Map<string, Uint8Array> } {
  const bytes = new Map<string, Uint8Array>();
  const tensors = ALL_DTYPES.map((dtype, i): GgufWriteTensor => {
    const shape = [3, DTYPE_LAYOUTS[dtype].blockSize * 2];
    const data = new Uint8Array(byteSize(dtype, shape[0] * shape[1])).map((_, j) => (j * 31 + i * 7) & 0xff);
    const name = `blk.${i}.ffn_up.weight`;
    bytes.set(name, data);
    return { name, dtype, shape, data: () => data };
  });
  const norm = new Uint8Array(4 * 5).map((_, j) => j);
  bytes.set('output_norm.weight', norm);
  tensors.push({ name: 'output_norm.weight', dtype: 'f32', shape: [5], data: () => norm });
  return { tensors, bytes };
}

for (const version of [2, 3] as const) {
  for (const alignment of [undefined, 64, 1]) {
    test(`write then read GGUF v${version}, alignment ${alignment ?? 'default'}: every metadata type and dtype`, () => {
      const dir = tempDir();
      try {
        const path = join(dir, 'm.gguf');
        const { tensors, bytes } = tensorsOfEveryDtype();
        writeGguf(path, { metadata: METADATA, tensors, version, alignment });
        const header = readGgufHeader(path);
        assert.equal(header.version, version);
        assert.equal(header.alignment, alignment ?? 32);
        assert.equal(header.dataOffset % header.alignment, 0);
        assert.equal(header.fileSize, statSync(path).size);
        for (const entry of METADATA) {
          assert.deepEqual(header.metadata.get(entry.key), entry.value, entry.key);
          assert.equal(header.types.get(entry.key)?.type, entry.type, entry.key);
          assert.equal(header.types.get(entry.key)?.arrayType, entry.arrayType, entry.key);
        }
        assert.equal(header.metadata.has('general.alignment'), alignment !== undefined);
        const store = new GgufStore(path);
        try {
          assert.deepEqual(store.list().map((t) => t.name), tensors.map((t) => t.name));
          for (const tensor of tensors) {
            const info = store.get(tensor.name);
            assert.deepEqual(info, { name: tensor.name, dtype: tensor.dtype, shape: tensor.shape });
            assert.equal(store.tensor(tensor.name)!.offset % header.alignment, 0);
            const rows = tensor.shape.length === 1 ? 1 : tensor.shape[0];
            assert.deepEqual(store.readRows(tensor.name, 0, rows), bytes.get(tensor.name));
          }
        } finally {
          store.close();
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test('metadata getters return typed values and name the key when missing or mistyped', () => {
  const metadata = new Map<string, GgufValue>([
    ['a', 'text'],
    ['n', 7],
    ['arr', [1, 2]],
  ]);
  assert.equal(getString(metadata, 'a'), 'text');
  assert.equal(getNumber(metadata, 'n'), 7);
  assert.deepEqual(getArray(metadata, 'arr'), [1, 2]);
  assert.equal(getOptionalString(metadata, 'zzz'), undefined);
  assert.throws(() => getNumber(metadata, 'a'), (e: TesseraError) => e.code === 'TESSERA_ERR_BAD_FORMAT' && e.message.includes(' a '));
  assert.throws(() => getString(metadata, 'missing.key'), (e: TesseraError) => e.code === 'TESSERA_ERR_BAD_FORMAT' && e.message.includes('missing.key'));
});

test('writer refuses data of the wrong length and removes the partial file', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'bad.gguf');
    const tensors: GgufWriteTensor[] = [{ name: 'x', dtype: 'q8_0', shape: [2, 32], data: () => new Uint8Array(10) }];
    assert.throws(() => writeGguf(path, { metadata: [], tensors }), (e: TesseraError) => e.code === 'TESSERA_ERR_INVALID_ARGUMENT');
    assert.throws(() => statSync(path));
    const ragged: GgufWriteTensor[] = [{ name: 'x', dtype: 'q4_0', shape: [2, 40], data: () => new Uint8Array(0) }];
    assert.throws(() => writeGguf(path, { metadata: [], tensors: ragged }), (e: TesseraError) => e.code === 'TESSERA_ERR_INVALID_ARGUMENT');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('writer streams large tensors: data() is called once per tensor, in order', () => {
  const dir = tempDir();
  try {
    const path = join(dir, 'big.gguf');
    const calls: string[] = [];
    const big = new Float32Array(1 << 20).map((_, i) => i);
    const tensors: GgufWriteTensor[] = ['a', 'b'].map((name) => ({
      name,
      dtype: 'f32',
      shape: [1024, 1024],
      data: () => {
        calls.push(name);
        return new Uint8Array(big.buffer);
      },
    }));
    writeGguf(path, { metadata: [{ key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' }], tensors });
    assert.deepEqual(calls, ['a', 'b']);
    const store = new GgufStore(path);
    const row = new Float32Array(store.readRows('b', 1000, 1001).buffer);
    assert.equal(row[5], 1000 * 1024 + 5);
    assert.equal(store.bytesRead, 4096);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('re-writing the tiny Llama 2 fixture from what was read reproduces it byte for byte', (t) => {
  const path = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  if (!path) return;
  const dir = tempDir();
  const store = new GgufStore(path);
  try {
    const copy = join(dir, 'copy.gguf');
    const { header } = store;
    const tensors: GgufWriteTensor[] = header.tensors.map((x) => ({
      name: x.name,
      dtype: x.dtype,
      shape: x.shape,
      data: () => store.readRows(x.name, 0, matrixShape(x.shape).rows),
    }));
    writeGguf(copy, { metadata: metadataEntries(header), tensors, version: header.version as 2 | 3 });
    assert.ok(readFileSync(copy).equals(readFileSync(path)), 'the copy differs from the original');
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
