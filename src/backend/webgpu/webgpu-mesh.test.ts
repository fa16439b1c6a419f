/**
 * `--rank-backend webgpu`: a tensor-parallel and a pipeline-parallel mesh of
 * WebGPU ranks (each rank process with its own device) generate the tokens one
 * WebGPU process generates, through the real CLI.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { synthesize } from '../../synth/synthesize.js';
import { projectRoot } from '../../testing/fixtures.js';
import { testWebGpuBackend } from './test-device.js';

const gpu = testWebGpuBackend();

function generate(model: string, args: string[]): number[] {
  const run = spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), 'run', '--model', model, '--prompt-ids', '1,2,3,4', '--max-tokens', '8', '--json', ...args], {
    encoding: 'utf8',
    timeout: 5 * 60 * 1000,
  });
  assert.equal(run.status, 0, run.stderr.slice(-2000));
  return (JSON.parse(run.stdout) as { ids: number[] }).ids;
}

test('a tp 2 and a pp 2 mesh of WebGPU ranks give the tokens of one WebGPU process', { skip: typeof gpu === 'string' ? gpu : false, timeout: 10 * 60 * 1000 }, async () => {
  const model = join(mkdtempSync(join(tmpdir(), 'tessera-webgpu-mesh-')), 'tiny.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 9 });
  const alone = generate(model, ['--backend', 'webgpu']);
  assert.equal(alone.length, 8);
  assert.deepEqual(generate(model, ['--tp', '2', '--rank-backend', 'webgpu']), alone);
  assert.deepEqual(generate(model, ['--pp', '2', '--rank-backend', 'webgpu']), alone);
});
