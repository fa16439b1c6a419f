/** `tessera bench engine` as a user runs it: a real process, the real peer, a JSON result. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { EngineBenchResult } from '../../bench/engine-benchmark.js';
import { synthesize } from '../../synth/synthesize.js';
import { projectRoot } from '../../testing/fixtures.js';

test('bench engine writes Tessera and llama.cpp figures side by side', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-bench-engine-'));
  const model = join(scratch, 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 2 });
  const out = join(scratch, 'results');
  const args = ['bench', 'engine', '--model', model, '--threads', '1', '--backend', 'auto', '--rounds', '1', '--prompt-lens', '8,16', '--decode-tokens', '4', '--out', out];
  const run = spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), ...args], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /decode tok\/s/);
  const files = readdirSync(out);
  assert.equal(files.length, 1);
  const result = JSON.parse(readFileSync(join(out, files[0]), 'utf8')) as EngineBenchResult;
  assert.equal(result.kind, 'engine');
  assert.deepEqual(Object.keys(result.tessera.prefill).sort(), ['16', '8']);
  assert.ok(result.tessera.decode > 0 && (result.llamaCpp?.decode ?? 0) > 0);
  assert.ok(result.ratios && result.ratios.decode > 0);
  assert.ok(result.model.bytes > 0);
  // One round: its decodes bracketed by triads, and the limit the best of every triad of the run.
  assert.equal(result.decodeRounds.length, 1);
  assert.equal(result.decodeRounds[0].tessera, result.tessera.decode);
  assert.equal(result.decodeRounds[0].triads.length, 3);
  assert.equal(result.memoryBandwidthRoundsGBs.length, 4);
  assert.equal(result.memoryBandwidthGBs, Math.max(...result.memoryBandwidthRoundsGBs));
  assert.equal(result.threads, 1);
});
