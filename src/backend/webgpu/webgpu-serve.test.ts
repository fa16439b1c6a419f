/**
 * `tessera serve --backend webgpu`: the serving tests (src/serve/server.test.ts,
 * through the openai client, continuous batching, prefix cache, cancellation)
 * run again with the WebGPU backend in the engine worker, in a child test
 * process, so their results are the ones the reference backend must give.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../../testing/fixtures.js';
import { testWebGpuBackend } from './test-device.js';

const gpu = testWebGpuBackend();

test('the serving tests pass with --backend webgpu', { skip: typeof gpu === 'string' ? gpu : false, timeout: 20 * 60 * 1000 }, () => {
  const file = join(projectRoot, 'dist', 'serve', 'server.test.js');
  // Without NODE_TEST_CONTEXT the child reports as a top-level run (TAP on stdout), not to this runner.
  const env: NodeJS.ProcessEnv = { ...process.env, TESSERA_TEST_SERVE_BACKEND: 'webgpu' };
  delete env.NODE_TEST_CONTEXT;
  const run = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
    env,
    encoding: 'utf8',
    timeout: 19 * 60 * 1000,
  });
  const summary = (run.stdout ?? '').split('\n').filter((line) => /^# (tests|pass|fail)|^not ok|^\s+not ok/.test(line));
  assert.equal(run.status, 0, `server tests on webgpu failed:\n${summary.join('\n')}\n${(run.stdout ?? '').slice(-4000)}`);
  assert.ok(summary.some((line) => /^# pass [1-9]/.test(line)), summary.join('\n'));
});
