/** `tessera plan` as a user runs it: catalog names, model files, JSON output, coded errors. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { synthesize } from '../synth/synthesize.js';
import { fixture, projectRoot } from '../testing/fixtures.js';

const bin = join(projectRoot, 'bin', 'tessera.js');
const scratch = mkdtempSync(join(tmpdir(), 'tessera-plan-'));

function tessera(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [bin, 'plan', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function codedFailure(result: ReturnType<typeof tessera>, code: string): void {
  assert.notEqual(result.status, 0, result.stdout);
  assert.match(result.stderr.trim(), new RegExp(`^error ${code}: `));
}

test('plan --json prints TTFT, TPOT, throughput, memory per device and the bottleneck', () => {
  const result = tessera('--model', 'llama-3.1-8b', '--hardware', 'h100-sxm', '--input-len', '1000', '--output-len', '200', '--concurrency', '32', '--json');
  assert.equal(result.status, 0, result.stderr);
  const plan = JSON.parse(result.stdout) as Record<string, unknown>;
  for (const key of ['ttftMs', 'tpotMs', 'outputTokensPerSecond', 'memoryPerDeviceGiB', 'bottleneck', 'decodeStep']) assert.ok(key in plan, key);
  assert.equal(plan['batch'], 32);
  assert.ok((plan['outputTokensPerSecond'] as number) > 0);
});

test('plan prints a summary naming the bottleneck, and a what-if table', () => {
  const result = tessera('--model', 'llama-3.1-70b', '--hardware', 'h200-sxm', '--tp', '4', '--qps', '2', '--what-if', 'memory-bandwidth=1.5x,link-latency=0.5x');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /bottleneck: /);
  assert.match(result.stdout, /memory-bandwidth\s+1\.5x/);
  assert.match(result.stdout, /link-latency\s+0\.5x/);
});

test('plan --search ranks layouts under a TPOT target', () => {
  const result = tessera('--model', 'llama-3.1-70b', '--hardware', 'h100-sxm', '--concurrency', '64', '--search', '--max-devices', '8', '--max-tpot-ms', '50');
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /^\s+1\. tp \d/m);
});

test('plan reads a GGUF file (its weight format) and a config.json, DeepSeek-V3 included', async () => {
  const model = join(scratch, 'tiny-q4_0.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q4_0', out: model, format: 'gguf', seed: 3 });
  const fromGguf = tessera('--model', model, '--hardware', 'this-machine', '--input-len', '16', '--output-len', '8');
  assert.equal(fromGguf.status, 0, fromGguf.stderr);
  assert.match(fromGguf.stdout, /q4_0 weights/);
  const llama = join(scratch, 'config.json');
  writeFileSync(llama, JSON.stringify({ model_type: 'llama', hidden_size: 4096, intermediate_size: 14336, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 128256 }));
  assert.equal(tessera('--model', llama, '--hardware', 'a100-80g-sxm', '--json').status, 0);
  const deepseek = join(scratch, 'deepseek-config.json');
  writeFileSync(
    deepseek,
    JSON.stringify({ model_type: 'deepseek_v3', hidden_size: 7168, intermediate_size: 18432, num_hidden_layers: 61, num_attention_heads: 128, vocab_size: 129280, q_lora_rank: 1536, kv_lora_rank: 512, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128, n_routed_experts: 256, num_experts_per_tok: 8, moe_intermediate_size: 2048, n_shared_experts: 1, first_k_dense_replace: 3 }),
  );
  const result = tessera('--model', deepseek, '--hardware', 'h200-sxm', '--tp', '8', '--ep', '8', '--weights-dtype', 'fp8', '--json');
  assert.equal(result.status, 0, result.stderr);
});

test('bad input is a coded error: unknown model or hardware, a layout that does not fit', () => {
  codedFailure(tessera('--model', 'llama-9-1t'), 'TESSERA_ERR_UNKNOWN_MODEL');
  codedFailure(tessera('--model', 'llama-3.1-8b', '--hardware', 'h900'), 'TESSERA_ERR_UNKNOWN_HARDWARE');
  const tooBig = tessera('--model', 'llama-3.1-405b', '--hardware', 'h100-sxm');
  codedFailure(tooBig, 'TESSERA_ERR_PLAN_DOES_NOT_FIT');
  assert.match(tooBig.stderr, /would fit with --tp 8 --pp 2/);
  codedFailure(tessera('--model', 'llama-3.1-8b', '--hardware', 'h100-sxm', '--qps', '1', '--concurrency', '2'), 'TESSERA_ERR_INVALID_ARGUMENT');
});

test('profile traces a run, names its bottleneck, writes the HTML report and a hardware profile plan can read', async () => {
  const model = join(scratch, 'tiny-profile.gguf');
  await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: model, format: 'gguf', seed: 4 });
  const html = join(scratch, 'report.html');
  const hardware = join(scratch, 'hardware.json');
  const result = spawnSync(process.execPath, [bin, 'profile', '--model', model, '--prompt-len', '8', '--output-len', '4', '--threads', '1', '--json', '--html', html, '--save-profile', hardware], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(result.status, 0, result.stderr);
  const profile = JSON.parse(result.stdout) as { summary: string; phases: { phase: string; rank: number; breakdown: Record<string, number> }[]; limits: { memoryBandwidthGBs: number } };
  assert.match(profile.summary, /^Decode is (memory|compute|overhead|network)-bound/);
  assert.deepEqual(profile.phases.map((p) => p.phase).sort(), ['decode', 'prefill']);
  assert.ok(profile.limits.memoryBandwidthGBs > 0);
  assert.match(readFileSync(html, 'utf8'), /<h1>tessera profile/);
  const planned = tessera('--model', 'llama-3.1-8b', '--hardware', hardware, '--weights-dtype', 'q4_0', '--json');
  assert.equal(planned.status, 0, planned.stderr);
  // A batch of 4: every decode step carries 4 sequences, so each phase counts 4 tokens a step.
  const batched = spawnSync(process.execPath, [bin, 'profile', '--model', model, '--prompt-len', '8', '--output-len', '4', '--threads', '1', '--concurrency', '4', '--json'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(batched.status, 0, batched.stderr);
  const batch = JSON.parse(batched.stdout) as { phases: { phase: string; rank: number; tokens: number }[] };
  assert.equal(batch.phases.find((p) => p.phase === 'prefill')?.tokens, 32);
  assert.equal(batch.phases.find((p) => p.phase === 'decode')?.tokens, 12);
});

test('profile on a tp 2 mesh measures the link between the ranks and shows the ranks\' waits', (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const result = spawnSync(process.execPath, [bin, 'profile', '--model', model, '--tp', '2', '--prompt-len', '8', '--output-len', '6', '--json'], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(result.status, 0, result.stderr);
  const profile = JSON.parse(result.stdout) as { link?: { oneWayGBs: number; allReduceSmallMicros: number; allReduceBusGBs: number; transport: string }; phases: { rank: number; breakdown: Record<string, number> }[] };
  assert.ok(profile.link, 'a link figure');
  assert.ok(profile.link.oneWayGBs > 0 && profile.link.allReduceSmallMicros > 0 && profile.link.allReduceBusGBs > 0, JSON.stringify(profile.link));
  assert.deepEqual([...new Set(profile.phases.map((p) => p.rank))].sort(), [0, 1]);
});
