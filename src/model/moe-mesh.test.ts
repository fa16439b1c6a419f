/**
 * `--ep` on the CLI: MoE fixtures on forked worker processes (Unix sockets)
 * print exactly the logits and greedy ids of one process, for ep 2 and 4,
 * tp 2 × ep 2 and ep 2 × pp 2; impossible degrees are coded errors.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, projectRoot } from '../testing/fixtures.js';

const cli = join(projectRoot, 'bin', 'tessera.js');

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('tessera logits and run with --ep print exactly what one process prints', (t) => {
  const path = fixture(t, 'moe-fixtures/mixtral_scale.safetensors');
  if (!path) return;
  const logits = ['logits', '--model', path, '--prompt-ids', '28,28,10,13,27'];
  const run = ['run', '--model', path, '--prompt-ids', '28,28,10,13,27', '--max-tokens', '6', '--json'];
  const one = tessera(...logits);
  assert.equal(one.status, 0, one.stderr);
  const greedy = (output: string): number[] => (JSON.parse(output) as { ids: number[] }).ids;
  const oneRun = tessera(...run);
  assert.equal(oneRun.status, 0, oneRun.stderr);
  for (const degrees of [['--ep', '2'], ['--ep', '4'], ['--tp', '2', '--ep', '2'], ['--ep', '2', '--pp', '2']]) {
    const mesh = tessera(...logits, ...degrees, '--transport', 'unix');
    assert.equal(mesh.status, 0, mesh.stderr);
    assert.equal(mesh.stdout, one.stdout, degrees.join(' '));
  }
  const meshRun = tessera(...run, '--ep', '2', '--transport', 'unix');
  assert.equal(meshRun.status, 0, meshRun.stderr);
  assert.deepEqual(greedy(meshRun.stdout), greedy(oneRun.stdout));
});

test('--ep that the model or --tp cannot take is TESSERA_ERR_SHARD_CONSTRAINT', (t) => {
  const moe = fixture(t, 'moe-fixtures/qwen_moe_tiny.safetensors');
  const dense = fixture(t, 'stories260K.bin');
  if (!moe || !dense) return;
  const cases: [string, string[], RegExp][] = [
    [moe, ['--tp', '2', '--ep', '4'], /--ep 4 must equal --tp 2/],
    [moe, ['--ep', '8', '--tp', '8'], /TESSERA_ERR_SHARD_CONSTRAINT/],
    [dense, ['--ep', '2'], /needs a mixture-of-experts model/],
  ];
  for (const [path, degrees, message] of cases) {
    const result = tessera('logits', '--model', path, '--prompt-ids', '1', ...degrees);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, /^error TESSERA_ERR_SHARD_CONSTRAINT: /);
    assert.match(result.stderr, message);
  }
});

test("--trace of an --ep run carries each rank's expert token counters", (t) => {
  const path = fixture(t, 'moe-fixtures/mixtral_scale.safetensors');
  if (!path) return;
  const trace = join(mkdtempSync(join(tmpdir(), 'tessera-moe-trace-')), 'trace.json');
  const prompt = [28, 28, 10, 13, 27];
  const result = tessera('run', '--model', path, '--prompt-ids', prompt.join(','), '--max-tokens', '1', '--json', '--ep', '2', '--transport', 'unix', '--trace', trace);
  assert.equal(result.status, 0, result.stderr);
  const events = (JSON.parse(readFileSync(trace, 'utf8')) as { traceEvents: { name: string; ph: string; pid: number; args?: Record<string, number> }[] }).traceEvents;
  const counters = events.filter((event) => event.ph === 'C' && event.name === 'layer 0 expert tokens');
  assert.deepEqual([...new Set(counters.map((event) => event.pid))].sort(), [0, 1]);
  // Each rank counts its own experts; together they routed every prompt token to its top 2.
  const lastOfRank = (rank: number): Record<string, number> => counters.filter((event) => event.pid === rank).at(-1)?.args ?? {};
  const total = [0, 1].reduce((sum, rank) => sum + Object.values(lastOfRank(rank)).reduce((a, b) => a + b, 0), 0);
  assert.equal(total, prompt.length * 2);
});
