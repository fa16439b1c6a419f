/** The CLI as a user runs it: a real process, real files, exit codes and one-line coded errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { GgufValueType } from '../format/gguf-types.js';
import { writeGguf } from '../format/gguf-writer.js';
import { synthesize } from '../synth/synthesize.js';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { fixture, projectRoot } from '../testing/fixtures.js';

const bin = join(projectRoot, 'bin', 'tessera.js');
const scratch = mkdtempSync(join(tmpdir(), 'tessera-cli-'));

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function assertCodedFailure(result: ReturnType<typeof tessera>, code: string): void {
  assert.notEqual(result.status, 0, result.stdout);
  const lines = result.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.match(lines[0], new RegExp(`^error ${code}: `));
  assert.doesNotMatch(result.stderr, /\n\s+at /);
}

test('run --json on stories260K from BOS gives the golden ids', (t) => {
  const model = fixture(t, 'stories260K.bin');
  const golden = fixture(t, 'stories260K.greedy.json');
  if (!model || !golden) return;
  const expected = (JSON.parse(readFileSync(golden, 'utf8')) as { generated_ids: number[] }).generated_ids;
  const result = tessera('run', '--model', model, '--max-tokens', '64', '--json');
  assert.equal(result.status, 0, result.stderr);
  const output = JSON.parse(result.stdout) as { promptIds: number[]; ids: number[]; text: string; finishReason: string; timings: object };
  assert.deepEqual(output.promptIds, [1]);
  assert.deepEqual(output.ids, expected.slice(0, 64));
  assert.equal(output.finishReason, 'length');
  assert.ok(output.text.startsWith('Once upon a time'));
  assert.ok('decodeTokensPerSecond' in output.timings);
});

test('run streams text, tokenize and inspect print JSON', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const streamed = tessera('run', '--model', model, '--prompt', 'Once upon a time', '--max-tokens', '8');
  assert.equal(streamed.status, 0, streamed.stderr);
  assert.ok(streamed.stdout.trim().length > 0);
  const tokens = tessera('tokenize', '--model', model, '--text', 'Once upon a time', '--json');
  assert.equal(tokens.status, 0, tokens.stderr);
  const ids = (JSON.parse(tokens.stdout) as { ids: number[] }).ids;
  assert.equal(ids[0], 1);
  assert.ok(ids.length > 2);
  const inspect = tessera('inspect', '--model', model, '--json');
  assert.equal(inspect.status, 0, inspect.stderr);
  const report = JSON.parse(inspect.stdout) as { architecture: string; parameters: number; tensors: unknown[] };
  assert.equal(report.architecture, 'llama');
  assert.equal(report.parameters, 260_032);
});

test('logits --json prints one float row per position', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const result = tessera('logits', '--model', model, '--prompt-ids', '1,403,407', '--json');
  assert.equal(result.status, 0, result.stderr);
  const logits = (JSON.parse(result.stdout) as { logits: number[][] }).logits;
  assert.equal(logits.length, 3);
  assert.equal(logits[0].length, 512);
  const argmax = logits[0].indexOf(Math.max(...logits[0]));
  assert.equal(argmax, 403);
});

test('--kv-cache-dtype f16 on run and logits: the same text from BOS, logits within the half rounding; a bad value is coded', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const ids = '1,403,407,261,378,432';
  const logitsOf = (dtype: string) => {
    const result = tessera('logits', '--model', model, '--prompt-ids', ids, '--json', '--kv-cache-dtype', dtype);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as { logits: number[][] }).logits.flat();
  };
  const [f32, f16] = [logitsOf('f32'), logitsOf('f16')];
  const delta = Math.max(...f32.map((v, i) => Math.abs(v - f16[i])));
  assert.ok(delta > 0 && delta < 0.05, `max |Δ| ${delta}`);
  const run = (dtype: string) => tessera('run', '--model', model, '--max-tokens', '16', '--json', '--kv-cache-dtype', dtype);
  const [runF32, runF16] = [run('f32'), run('f16')];
  assert.equal(runF16.status, 0, runF16.stderr);
  // stories260K's greedy margins are wide: 16 tokens do not flip under half-rounded keys and values.
  assert.deepEqual((JSON.parse(runF16.stdout) as { ids: number[] }).ids, (JSON.parse(runF32.stdout) as { ids: number[] }).ids);
  const bad = tessera('run', '--model', model, '--max-tokens', '1', '--kv-cache-dtype', 'bf16');
  assertCodedFailure(bad, 'TESSERA_ERR_INVALID_ARGUMENT');
  assert.match(bad.stderr, /--kv-cache-dtype must be one of f32, f16/);
});

test('a missing model file is a coded one-line error', () => {
  assertCodedFailure(tessera('run', '--model', join(scratch, 'nope.gguf'), '--max-tokens', '1'), 'TESSERA_ERR_FILE_NOT_FOUND');
});

test('a truncated GGUF is a coded one-line error', (t) => {
  const source = fixture(t, 'tiny-random-llama2/llama-2-tiny-random.gguf');
  if (!source) return;
  const bytes = readFileSync(source);
  const truncated = join(scratch, 'truncated.gguf');
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 4096));
  assertCodedFailure(tessera('run', '--model', truncated, '--max-tokens', '1'), 'TESSERA_ERR_TRUNCATED');
  const headerCut = join(scratch, 'header-cut.gguf');
  writeFileSync(headerCut, bytes.subarray(0, 5000));
  assertCodedFailure(tessera('inspect', '--model', headerCut), 'TESSERA_ERR_TRUNCATED');
});

test('a corrupt safetensors file is a coded one-line error', () => {
  const dir = join(scratch, 'corrupt-hf');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ model_type: 'llama' }));
  const garbage = Buffer.alloc(64, 0x7b);
  garbage.writeBigUInt64LE(40n, 0);
  writeFileSync(join(dir, 'model.safetensors'), garbage);
  assertCodedFailure(tessera('inspect', '--model', dir), 'TESSERA_ERR_BAD_FORMAT');
});

test('an unsupported tensor type and an unsupported architecture are coded errors', () => {
  const tensorData = new Uint8Array(32 * 4);
  const unsupportedType = join(scratch, 'q5k.gguf');
  writeGguf(unsupportedType, {
    metadata: [{ key: 'general.architecture', type: GgufValueType.STRING, value: 'llama' }],
    tensors: [{ name: 'token_embd.weight', dtype: 'f32', shape: [1, 32], data: () => tensorData }],
  });
  patchTensorType(unsupportedType, 'token_embd.weight', 13); // ggml Q5_K
  const q5k = tessera('inspect', '--model', unsupportedType);
  assertCodedFailure(q5k, 'TESSERA_ERR_UNSUPPORTED_DTYPE');
  assert.match(q5k.stderr, /Q5_K/);

  const otherArch = join(scratch, 'gpt2.gguf');
  writeGguf(otherArch, {
    metadata: [{ key: 'general.architecture', type: GgufValueType.STRING, value: 'gpt2' }],
    tensors: [{ name: 'token_embd.weight', dtype: 'f32', shape: [1, 32], data: () => tensorData }],
  });
  const arch = tessera('inspect', '--model', otherArch);
  assertCodedFailure(arch, 'TESSERA_ERR_UNSUPPORTED_ARCH');
  assert.match(arch.stderr, /gpt2/);
});

test('a prompt longer than the context and bad ids are coded errors', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const ids = new Array<number>(600).fill(7).join(',');
  assertCodedFailure(tessera('run', '--model', model, '--prompt-ids', ids, '--max-tokens', '1'), 'TESSERA_ERR_CONTEXT_OVERFLOW');
  assertCodedFailure(tessera('run', '--model', model, '--prompt-ids', '1,x'), 'TESSERA_ERR_INVALID_ARGUMENT');
  assertCodedFailure(tessera('run', '--model', model, '--temperature', '-1'), 'TESSERA_ERR_INVALID_ARGUMENT');
});

test('--verbose adds the stack trace', () => {
  const result = tessera('run', '--model', join(scratch, 'nope.gguf'), '--verbose');
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /TESSERA_ERR_FILE_NOT_FOUND/);
  assert.match(result.stderr, /\n\s+at /);
});

/** Rewrites the ggml type id of a tensor info in place (the u32 after its dims). */
function patchTensorType(path: string, tensorName: string, typeId: number): void {
  const bytes = readFileSync(path);
  const nameAt = bytes.indexOf(Buffer.from(tensorName), 24);
  const dimsAt = nameAt + tensorName.length;
  const numDims = bytes.readUInt32LE(dimsAt);
  const typeAt = dimsAt + 4 + numDims * 8;
  const patch = Buffer.alloc(4);
  patch.writeUInt32LE(typeId);
  const fd = openSync(path, 'r+');
  try {
    const check = Buffer.alloc(4);
    readSync(fd, check, 0, 4, typeAt);
    assert.equal(check.readUInt32LE(), 0, 'expected an F32 type id to patch');
    writeSync(fd, patch, 0, 4, typeAt);
  } finally {
    closeSync(fd);
  }
}

test('a GGUF model generates the same greedy tokens on the native (file-mapped) and reference backends', async () => {
  const model = join(scratch, 'tiny-q8.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 9 });
  const ids = (backend: string): number[] => {
    const result = tessera('run', '--model', model, '--prompt', 'the robot and the sea', '--max-tokens', '16', '--json', '--backend', backend);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as { ids: number[] }).ids;
  };
  assert.deepEqual(ids('auto'), ids('reference'));
});

test('--tile-cache: the first run saves packed tiles, the next maps them and generates the same tokens; a file in its place is coded', async () => {
  const model = join(scratch, 'tiny-q8-tiles.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 10 });
  const cache = join(scratch, 'tiles');
  const ids = (...extra: string[]): number[] => {
    const result = tessera('run', '--model', model, '--prompt', 'the robot and the sea', '--max-tokens', '12', '--json', ...extra);
    assert.equal(result.status, 0, result.stderr);
    return (JSON.parse(result.stdout) as { ids: number[] }).ids;
  };
  const plain = ids('--tile-cache', 'off');
  assert.deepEqual(ids('--tile-cache', cache), plain);
  assert.deepEqual(ids('--tile-cache', cache), plain);
  // Tiles exist only where the kernel variant packs (AVX-512 VNNI); elsewhere the folder stays empty.
  const files = readdirSync(cache);
  assert.ok(files.every((file) => file.endsWith('.tiles')), files.join(', '));
  const addon = loadNativeAddon();
  if (addon.ok && addon.addon.info().supportedIsas.includes('avx512')) assert.ok(files.length > 0, 'no tiles saved');
  writeFileSync(join(scratch, 'not-a-folder'), 'x');
  assertCodedFailure(tessera('run', '--model', model, '--max-tokens', '1', '--tile-cache', join(scratch, 'not-a-folder', 'tiles')), 'TESSERA_ERR_INVALID_ARGUMENT');
});
