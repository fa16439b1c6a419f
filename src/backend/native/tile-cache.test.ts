/**
 * The tile cache (tile-cache.ts, native/src/tile-file.cc) with real files: a
 * first load saves packed tiles, a later one maps them with the same bits,
 * and a changed model, a damaged file or an unwritable cache never changes
 * what a load gives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRandom, assertBitwise, encodeWeight } from '../backend-oracle.js';
import { isTesseraError } from '../../core/errors.js';
import { loadNativeAddon } from './native-addon.js';
import { NativeBackend } from './native-backend.js';
import { TileCache } from './tile-cache.js';

const load = loadNativeAddon();
const packs = load.ok && new NativeBackend().weightLayout(new NativeBackend().loadWeight('q8_0', [16, 32], encodeWeight('q8_0', new Float32Array(16 * 32)).bytes)) === 'tiles';
const skip = !load.ok ? `the addon is not built (${load.ok ? '' : load.reason})` : !packs ? 'this CPU has no tile kernels (AVX-512 VNNI), so nothing is packed or cached' : false;

/** A model-like file holding three tensors at odd offsets, and their keys. */
function writeModel(file: string, random: TestRandom): { dtype: 'q8_0' | 'f16' | 'q4_k' | 'f32'; offset: number; shape: [number, number] }[] {
  const tensors = [
    { dtype: 'q8_0' as const, shape: [37, 96] as [number, number] },
    { dtype: 'f16' as const, shape: [21, 64] as [number, number] },
    { dtype: 'q4_k' as const, shape: [17, 512] as [number, number] },
    { dtype: 'f32' as const, shape: [5, 8] as [number, number] },
  ];
  const chunks: Uint8Array[] = [];
  let offset = 4099;
  const placed = tensors.map((tensor) => {
    const { bytes } = encodeWeight(tensor.dtype, random.floats(tensor.shape[0] * tensor.shape[1]));
    chunks.push(bytes);
    const at = offset;
    offset += bytes.length + 13;
    return { ...tensor, offset: at };
  });
  const contents = new Uint8Array(offset);
  placed.forEach((tensor, i) => contents.set(chunks[i], tensor.offset));
  writeFileSync(file, contents);
  return placed;
}

test('tile cache: a later load maps the saved tiles and computes the same bits; a changed model misses', { skip }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-tiles-'));
  try {
    const random = new TestRandom(171);
    const model = join(scratch, 'model.bin');
    const cache = join(scratch, 'cache');
    const tensors = writeModel(model, random);
    const first = new NativeBackend({ tileCache: cache });
    const loaded = tensors.map((t) => first.loadWeightFromFile(model, t.offset, t.dtype, t.shape));
    assert.deepEqual(loaded.map((w) => first.weightLayout(w)), ['tiles', 'tiles', 'tiles', 'stored']);
    assert.equal(readdirSync(cache).length, 3, 'one file per packed weight, none for f32');

    const second = new NativeBackend({ tileCache: cache });
    const mapped = tensors.map((t) => second.loadWeightFromFile(model, t.offset, t.dtype, t.shape));
    assert.deepEqual(mapped.map((w) => second.weightLayout(w)), ['saved-tiles', 'saved-tiles', 'saved-tiles', 'stored']);
    tensors.forEach((t, i) => {
      const x = random.floats(3 * t.shape[1]);
      assertBitwise(second.matmul(x, mapped[i], 3), first.matmul(x, loaded[i], 3), `${t.dtype} matmul`);
      assertBitwise(second.readRows(mapped[i], 1, 4), first.readRows(loaded[i], 1, 4), `${t.dtype} rows`);
    });

    // New contents (and time) under the same name: a miss, packed from the new bytes.
    const changed = writeModel(model, new TestRandom(172));
    utimesSync(model, new Date(), new Date(Date.now() + 5000));
    const third = new NativeBackend({ tileCache: cache });
    const fresh = third.loadWeightFromFile(model, changed[0].offset, 'q8_0', changed[0].shape);
    assert.equal(third.weightLayout(fresh), 'tiles');
    const plain = new NativeBackend().loadWeightFromFile(model, changed[0].offset, 'q8_0', changed[0].shape);
    const x = random.floats(2 * 96);
    assertBitwise(third.matmul(x, fresh, 2), new NativeBackend().matmul(x, plain, 2), 'changed model');
    assert.equal(readdirSync(cache).length, 4);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('tile cache: a damaged file or one of another tile layout is packed again and replaced; an unwritable cache is said once', { skip }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-tiles-'));
  try {
    const model = join(scratch, 'model.bin');
    const cache = join(scratch, 'cache');
    const [tensor] = writeModel(model, new TestRandom(173));
    new NativeBackend({ tileCache: cache }).loadWeightFromFile(model, tensor.offset, tensor.dtype, tensor.shape);
    const [file] = readdirSync(cache);
    truncateSync(join(cache, file), 5000);
    const backend = new NativeBackend({ tileCache: cache });
    assert.equal(backend.weightLayout(backend.loadWeightFromFile(model, tensor.offset, tensor.dtype, tensor.shape)), 'tiles');
    const reloaded = new NativeBackend({ tileCache: cache });
    assert.equal(reloaded.weightLayout(reloaded.loadWeightFromFile(model, tensor.offset, tensor.dtype, tensor.shape)), 'saved-tiles');

    // A file of another tile layout (its header's layout fingerprint, bytes 48..55, differs): packed again.
    const saved = readFileSync(join(cache, file));
    saved[50] ^= 0xff;
    writeFileSync(join(cache, file), saved);
    const other = new NativeBackend({ tileCache: cache });
    assert.equal(other.weightLayout(other.loadWeightFromFile(model, tensor.offset, tensor.dtype, tensor.shape)), 'tiles');

    // The temporary file cannot be created (a folder in its place): the load works, one warning.
    rmSync(join(cache, file));
    mkdirSync(join(cache, `${file}.tmp-${process.pid}`));
    const warnings: string[] = [];
    const version = load.ok ? load.addon.info().tileFileVersion : 0;
    const warned = new NativeBackend({ tileCache: new TileCache(cache, version, (message) => warnings.push(message)) });
    for (let i = 0; i < 2; i++) assert.equal(warned.weightLayout(warned.loadWeightFromFile(model, tensor.offset, tensor.dtype, tensor.shape)), 'tiles');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /could not save packed tiles/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

test('tile cache: a folder that cannot be made is a coded error', { skip: load.ok ? false : 'the addon is not built' }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-tiles-'));
  try {
    writeFileSync(join(scratch, 'file'), 'x');
    assert.throws(() => new NativeBackend({ tileCache: join(scratch, 'file', 'cache') }), (error: unknown) => isTesseraError(error) && error.code === 'TESSERA_ERR_INVALID_ARGUMENT');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
