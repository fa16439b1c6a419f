/** `tessera plan --pd` as a user runs it: every split weighed in text, one split in JSON, a bad split refused. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { projectRoot } from '../testing/fixtures.js';

function plan(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), 'plan', '--model', 'llama-3.1-8b', '--hardware', 'h100-sxm', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test('plan --pd weighs every prefill:decode split of --dp replicas and gives a verdict', () => {
  const result = plan('--pd', '--dp', '4', '--input-len', '4096', '--output-len', '128', '--qps', '8');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /colocated \(4 replicas\)/);
  for (const split of ['1:3', '2:2', '3:1']) assert.match(result.stdout, new RegExp(`^  ${split} `, 'm'));
  assert.match(result.stdout, /^disaggregation (pays|trades|does not pay)/m);
});

test('plan --pd P:D --json: that split against P + D colocated replicas', () => {
  const result = plan('--pd', '1:1', '--input-len', '2048', '--output-len', '64', '--concurrency', '16', '--json');
  assert.equal(result.status, 0, result.stderr);
  const comparison = JSON.parse(result.stdout) as { disaggregated: { split: unknown; transfer: { bytesPerRequest: number } }; colocated: { layout: { dp: number } }; outcome: string; verdict: string };
  assert.deepEqual(comparison.disaggregated.split, { prefill: 1, decode: 1 });
  assert.equal(comparison.colocated.layout.dp, 2);
  // 2,048 tokens × 32 layers × (2 × 8 KV heads × 128) × 2 bytes (bf16).
  assert.equal(comparison.disaggregated.transfer.bytesPerRequest, 2048 * 32 * 2048 * 2);
  assert.ok(['pays', 'trades', 'no'].includes(comparison.outcome));
  const bad = plan('--pd', '0:2');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr.trim(), /^error TESSERA_ERR_INVALID_ARGUMENT: --pd takes PREFILL:DECODE/);
});
