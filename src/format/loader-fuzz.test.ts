/**
 * Mutation fuzzing of the model loaders' headers: valid GGUF and
 * safetensors files with their header bytes flipped, overwritten with
 * boundary values, cut short, grown or shrunk, and (safetensors) their
 * header JSON rewritten field by field with values of any type. Opening the
 * mutated file, listing its tensors and reading a row of each must succeed
 * or fail with a coded TesseraError, never another exception, a hang or an
 * allocation the file cannot back. Fixed case counts and seed (see
 * fuzzSettings); each test reports what it tried and the codes it got.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { isTesseraError } from '../core/errors.js';
import { openModelFiles } from '../engine/model-files.js';
import { synthesize } from '../synth/synthesize.js';
import { applyMutations, fuzzSettings, mutationsArbitrary, Tally, type Mutation } from '../testing/byte-mutation.js';
import { GgufValueType, readGgufHeader, writeGguf, GgufStore } from './gguf.js';
import { SafetensorsStore } from './safetensors.js';
import { writeSafetensors } from './safetensors-writer.js';
import { matrixShape, type TensorStore } from './tensor-store.js';

const dir = mkdtempSync(join(tmpdir(), 'tessera-loader-fuzz-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const floats = (count: number): (() => Uint8Array) => () => new Uint8Array(new Float32Array(count).map((_, i) => i / 7).buffer);

function seedGguf(path: string): void {
  writeGguf(path, {
    metadata: [
      { key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' },
      { key: 'llama.block_count', type: GgufValueType.UINT32, value: 2 },
      { key: 'llama.rope.freq_base', type: GgufValueType.FLOAT32, value: 10000 },
      { key: 'general.flag', type: GgufValueType.BOOL, value: true },
      { key: 'general.tags', type: GgufValueType.ARRAY, arrayType: GgufValueType.STRING, value: ['a', 'bb', 'ccc'] },
      { key: 'general.ids', type: GgufValueType.ARRAY, arrayType: GgufValueType.INT32, value: [1, -2, 3] },
      { key: 'general.big', type: GgufValueType.UINT64, value: 123456789n },
    ],
    tensors: [
      { name: 'a.weight', dtype: 'f32', shape: [4, 8], data: floats(32) },
      { name: 'b.weight', dtype: 'q8_0', shape: [2, 64], data: () => new Uint8Array(2 * 2 * 34) },
      { name: 'c.norm', dtype: 'f16', shape: [16], data: () => new Uint8Array(32) },
    ],
  });
}

function seedSafetensors(path: string): void {
  writeSafetensors(
    path,
    [
      { name: 'model.embed_tokens.weight', dtype: 'f32', shape: [4, 8], data: floats(32) },
      { name: 'model.norm.weight', dtype: 'f16', shape: [8], data: () => new Uint8Array(16) },
      { name: 'lm_head.weight', dtype: 'bf16', shape: [2, 8], data: () => new Uint8Array(32) },
    ],
    { format: 'pt' },
  );
}

/** Everything a loader does with a file before compute: list, then read the first row (and a column slice) of each tensor. */
function exercise(store: TensorStore): void {
  try {
    for (const info of store.list()) {
      const { rows } = matrixShape(info.shape);
      store.readRows(info.name, 0, Math.min(rows, 1));
    }
  } finally {
    store.close();
  }
}

/** Runs `load` on each mutated file; any failure must be coded. Returns the report. */
function fuzzFile(label: string, seed: Uint8Array, region: number, runs: number, load: (path: string) => void): string {
  const path = join(dir, `${label}.mutant`);
  const tried = new Tally();
  const outcomes = new Tally();
  const settings = fuzzSettings(runs);
  fc.assert(
    fc.property(mutationsArbitrary(region), (mutations: Mutation[]) => {
      for (const mutation of mutations) tried.add(mutation.kind);
      writeFileSync(path, applyMutations(seed, mutations));
      try {
        load(path);
        outcomes.add('loaded');
      } catch (error) {
        if (!isTesseraError(error)) throw new Error(`${label}: ${JSON.stringify(mutations, (_, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))} threw ${String(error)}`, { cause: error });
        outcomes.add(error.code);
      }
    }),
    settings,
  );
  return `${label}: ${settings.numRuns} mutants (seed ${settings.seed}); mutations ${tried}; outcomes ${outcomes}`;
}

test('GGUF: mutated headers open, list and read, or fail with coded errors', (t) => {
  const path = join(dir, 'seed.gguf');
  seedGguf(path);
  const header = readGgufHeader(path);
  const report = fuzzFile('gguf', readFileSync(path), header.dataOffset + 16, 400, (mutant) => exercise(new GgufStore(mutant)));
  t.diagnostic(report);
});

test('safetensors: mutated headers open, list and read, or fail with coded errors', (t) => {
  const path = join(dir, 'seed.safetensors');
  seedSafetensors(path);
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0)) + 8;
  const report = fuzzFile('safetensors', bytes, headerLength, 300, (mutant) => exercise(SafetensorsStore.open(mutant)));
  t.diagnostic(report);
});

test('safetensors: header JSON with fields replaced by any JSON value loads or fails with coded errors', (t) => {
  const path = join(dir, 'seed-json.safetensors');
  seedSafetensors(path);
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, Record<string, unknown>>;
  const data = bytes.subarray(8 + headerLength);
  const names = Object.keys(header);
  const fields = ['dtype', 'shape', 'data_offsets', 'extra'];
  const mutant = join(dir, 'json.mutant');
  const tried = new Tally();
  const outcomes = new Tally();
  const settings = fuzzSettings(300);
  fc.assert(
    fc.property(fc.constantFrom(...names), fc.constantFrom(...fields), fc.jsonValue(), fc.boolean(), (name, field, value, keepLength) => {
      tried.add(`${name === '__metadata__' ? 'metadata' : 'tensor'}.${field}`);
      const changed = { ...header, [name]: { ...header[name], [field]: value } };
      const json = Buffer.from(JSON.stringify(changed));
      const prefix = Buffer.alloc(8);
      // Half the cases keep the original length prefix, so the JSON and its declared length disagree.
      prefix.writeBigUInt64LE(BigInt(keepLength ? headerLength : json.length));
      writeFileSync(mutant, Buffer.concat([prefix, json, data]));
      try {
        exercise(SafetensorsStore.open(mutant));
        outcomes.add('loaded');
      } catch (error) {
        if (!isTesseraError(error)) throw new Error(`${name}.${field} = ${JSON.stringify(value)} threw ${String(error)}`, { cause: error });
        outcomes.add(error.code);
      }
    }),
    settings,
  );
  t.diagnostic(`safetensors JSON: ${settings.numRuns} headers (seed ${settings.seed}); fields ${tried}; outcomes ${outcomes}`);
});

test('a whole model (GGUF with vocabulary): mutated tensor infos and counts through openModelFiles give coded errors', async (t) => {
  const path = join(dir, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: path, format: 'gguf', seed: 9 });
  const header = readGgufHeader(path);
  // The tensor infos sit just before the data: mutate the file's first bytes (counts) and that tail of the header.
  const infoBytes = header.tensors.reduce((sum, tensor) => sum + 8 + Buffer.byteLength(tensor.name) + 4 + 8 * tensor.shape.length + 4 + 8, 0);
  const start = header.dataOffset - infoBytes - 32;
  const bytes = readFileSync(path);
  const tail = bytes.subarray(start);
  const report = fuzzFile('gguf model tail', tail, header.dataOffset - start + 16, 100, (mutantTail) => {
    const whole = join(dir, 'model.mutant.gguf');
    writeFileSync(whole, Buffer.concat([bytes.subarray(0, start), readFileSync(mutantTail)]));
    const files = openModelFiles(whole);
    exercise(files.store);
  });
  t.diagnostic(report);
  const counts = fuzzFile('gguf model counts', bytes.subarray(0, 64), 24, 60, (mutantHead) => {
    const whole = join(dir, 'model.mutant.gguf');
    writeFileSync(whole, Buffer.concat([readFileSync(mutantHead), bytes.subarray(64)]));
    exercise(openModelFiles(whole).store);
  });
  t.diagnostic(counts);
  assert.ok(report.length > 0 && counts.length > 0);
});
