/** `tessera serve` and `tessera bench serve` as a user runs them: real processes, real sockets. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, projectRoot } from '../../testing/fixtures.js';
import { getPreset } from '../../synth/presets.js';
import { startServeProcess } from '../../testing/serve-process.js';

const bin = join(projectRoot, 'bin', 'tessera.js');

test('serve --model synth:tiny says the weights are random, serves, and stops on SIGTERM', async () => {
  const server = await startServeProcess(['--model', 'synth:tiny', '--port', '0', '--kv-cache-mib', '4', '--kv-cache-dtype', 'f16', '--api-key', 'k']);
  const { url } = server;
  const stderr = server.stderr();
  try {
    assert.match(stderr, /serving "synth:tiny" on /);
    assert.match(stderr, /RANDOM WEIGHTS/);
    // 2 bytes an element: twice the blocks of an f32 cache in the same 4 MiB.
    const preset = getPreset('tiny');
    const f32Blocks = Math.floor((4 * 2 ** 20) / (2 * preset.numLayers * 16 * preset.numKvHeads * preset.headDim * 4));
    assert.match(stderr, new RegExp(` ${2 * f32Blocks} f16 KV blocks of 16 tokens`));
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'synth:tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { choices: { message: { role: string } }[] };
    assert.equal(body.choices[0].message.role, 'assistant');
  } finally {
    server.kill('SIGTERM');
  }
  assert.equal(await server.exited, 0, server.stderr());
});

test('serve refuses bad flags and unknown presets with one coded line', () => {
  const flag = spawnSync(process.execPath, [bin, 'serve', '--model', 'synth:tiny', '--max-num-seqs', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(flag.status, 0);
  assert.match(flag.stderr, /TESSERA_ERR_INVALID_ARGUMENT: --max-num-seqs must be/);
  const dtype = spawnSync(process.execPath, [bin, 'serve', '--model', 'synth:tiny', '--kv-cache-dtype', 'fp8'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(dtype.status, 0);
  assert.match(dtype.stderr, /TESSERA_ERR_INVALID_ARGUMENT: --kv-cache-dtype must be one of f32, f16, got "fp8"/);
  const preset = spawnSync(process.execPath, [bin, 'serve', '--model', 'synth:nope', '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(preset.status, 0);
  assert.match(preset.stderr, /^error TESSERA_ERR_UNKNOWN_PRESET: /m);
});

test('bench serve writes a JSON result with every concurrency level, and --trace the steps of the run', () => {
  const out = mkdtempSync(join(tmpdir(), 'tessera-bench-'));
  const traceDirectory = mkdtempSync(join(tmpdir(), 'tessera-bench-trace-'));
  const trace = join(traceDirectory, 'bench.json');
  try {
    const result = spawnSync(process.execPath, [bin, 'bench', 'serve', '--model', 'synth:tiny', '--concurrency', '1,2', '--prompt-len', '4', '--output-len', '3', '--rounds', '1', '--kv-cache-mib', '4', '--kv-cache-dtype', 'f16', '--trace', trace, '--out', out], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; cat?: string; args?: { tokens?: number } }[] }).traceEvents;
    // Warm-up (4 prompt ids + 4 tokens) and the two levels (4 + 3 each, 3 requests): every token passes through a step.
    const stepTokens = events.filter((event) => event.name === 'step').reduce((sum, event) => sum + (event.args?.tokens ?? 0), 0);
    assert.ok(stepTokens >= 4 + 3 + 3 * (4 + 2), `tokens in steps: ${stepTokens}`);
    assert.ok(events.some((event) => event.cat === 'backend' && event.name === 'matmul'));
    const files = readdirSync(out);
    assert.equal(files.length, 1);
    assert.match(files[0], /^serve-.*\.json$/);
    const report = JSON.parse(readFileSync(join(out, files[0]), 'utf8')) as { results: { concurrency: number; outputTokens: number; requests: number }[]; machine: { logicalCores: number }; options: { kvCacheDtype: string } };
    assert.equal(report.options.kvCacheDtype, 'f16');
    assert.deepEqual(report.results.map((level) => [level.concurrency, level.requests, level.outputTokens]), [[1, 1, 3], [2, 2, 6]]);
    assert.ok(report.machine.logicalCores > 0);
  } finally {
    rmSync(out, { recursive: true, force: true });
    rmSync(traceDirectory, { recursive: true, force: true });
  }
});

test('bench serve --tp 2 runs its levels on a mesh of rank processes and says so in the JSON', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const out = mkdtempSync(join(tmpdir(), 'tessera-bench-mesh-'));
  try {
    const args = ['bench', 'serve', '--model', model, '--tp', '2', '--rank-backend', 'reference', '--transport', 'unix', '--concurrency', '1,2', '--prompt-len', '4', '--output-len', '3', '--rounds', '1', '--kv-cache-mib', '4', '--out', out];
    const result = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 90_000 });
    assert.equal(result.status, 0, result.stderr);
    const [file] = readdirSync(out);
    const report = JSON.parse(readFileSync(join(out, file), 'utf8')) as { mesh?: { tp: number; pp: number }; results: { concurrency: number; outputTokens: number }[] };
    assert.deepEqual(report.mesh && [report.mesh.tp, report.mesh.pp], [2, 1]);
    assert.deepEqual(report.results.map((level) => [level.concurrency, level.outputTokens]), [[1, 3], [2, 6]]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('bench serve --response-format runs each level constrained too and records the ratio', () => {
  const out = mkdtempSync(join(tmpdir(), 'tessera-bench-constrained-'));
  try {
    const result = spawnSync(process.execPath, [bin, 'bench', 'serve', '--model', 'synth:tiny', '--concurrency', '1,2', '--prompt-len', '4', '--output-len', '6', '--rounds', '1', '--kv-cache-mib', '4', '--response-format', 'json_schema', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, result.stderr);
    const report = JSON.parse(readFileSync(join(out, readdirSync(out)[0]), 'utf8')) as { constrainedResults: { concurrency: number; outputTokens: number }[]; constrainedOverUnconstrained: Record<string, number>; responseFormat: { type: string } };
    assert.equal(report.responseFormat.type, 'json_schema');
    // The records schema needs far more than 6 tokens, so constrained requests run to --output-len as the others do.
    assert.deepEqual(report.constrainedResults.map((level) => [level.concurrency, level.outputTokens]), [[1, 6], [2, 12]]);
    assert.deepEqual(Object.keys(report.constrainedOverUnconstrained), ['c1', 'c2']);
    const bad = spawnSync(process.execPath, [bin, 'bench', 'serve', '--model', 'synth:tiny', '--response-format', '{oops', '--out', out], { encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /TESSERA_ERR_INVALID_ARGUMENT: --response-format must be/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
