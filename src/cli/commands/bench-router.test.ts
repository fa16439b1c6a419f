/** `tessera bench router` runs end to end on real replica processes and writes its JSON (tiny sizes: this checks the command, not the figures). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, projectRoot } from '../../testing/fixtures.js';

test('bench router --only a,b: both policies on the same workload, and one stream direct and routed, in the JSON', { timeout: 120_000 }, (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const out = mkdtempSync(join(tmpdir(), 'tessera-bench-router-'));
  try {
    const args = ['bench', 'router', '--model', model, '--only', 'a,b', '--prompts', '4', '--users', '2', '--system-len', '48', '--concurrency', '2', '--cached-prompts', '2', '--stream-tokens', '16', '--rounds', '1', '--out', out];
    const result = spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), ...args], { encoding: 'utf8', timeout: 110_000 });
    assert.equal(result.status, 0, result.stderr);
    const [file] = readdirSync(out);
    assert.match(file, /^router-.*\.json$/);
    const report = JSON.parse(readFileSync(join(out, file), 'utf8')) as {
      sharedPrefix: { roundRobin: { requests: number; promptTokens: number; prefillTokens: number }; prefix: { requests: number; promptTokens: number; prefillTokens: number } };
      singleStream: { directTokensPerSecond: number[]; routedTokensPerSecond: number[] };
      floors: Record<string, boolean>;
      machine: { loadAverageBefore: number[] };
    };
    const { roundRobin, prefix } = report.sharedPrefix;
    assert.deepEqual([roundRobin.requests, prefix.requests], [8, 8]);
    // 4 × 2 requests of 48 system + 32 user tokens, looked up once each in the replicas' caches.
    assert.deepEqual([roundRobin.promptTokens, prefix.promptTokens], [8 * 80, 8 * 80]);
    assert.ok(report.singleStream.directTokensPerSecond[0] > 0 && report.singleStream.routedTokensPerSecond[0] > 0);
    assert.deepEqual(Object.keys(report.floors).sort(), ['lowerMeanTtft', 'prefillAtLeast40PercentFewer', 'singleStreamAtLeast095']);
    assert.equal(report.machine.loadAverageBefore.length, 3);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
