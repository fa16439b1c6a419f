/** `tessera bench pd` runs end to end on real processes and writes its JSON (tiny sizes: this checks the command and the figures' plumbing, not the floors). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixture, projectRoot } from '../../testing/fixtures.js';

interface Run {
  streams: { requests: number; tpotMs: { p50: number; p99: number }; itlMs: { p99: number; gaps: number } };
  longPrompts: { requests: number; ttftMs: { p50: number } };
}

interface Probe {
  bytes: number;
  frames: number;
  frameBytes: number;
  kind: string;
  sharedMemory: boolean;
  directFrames: number;
  rateMBps: number;
}

test('bench pd: colocated and disaggregated on the same workload, the KV moved and the link probed, in the JSON', { timeout: 150_000 }, (t) => {
  const model = fixture(t, 'stories260K.bin');
  if (!model) return;
  const out = mkdtempSync(join(tmpdir(), 'tessera-bench-pd-'));
  try {
    const sizes = ['--streams', '2', '--stream-prompt-len', '8', '--stream-output-len', '8', '--long-prompts', '2', '--long-prompt-len', '64', '--long-output-len', '4', '--interval-ms', '100'];
    const args = ['bench', 'pd', '--model', model, ...sizes, '--max-batch-tokens', '32', '--kv-cache-mib', '8', '--probe-frames', '4', '--out', out];
    const result = spawnSync(process.execPath, [join(projectRoot, 'bin', 'tessera.js'), ...args], { encoding: 'utf8', timeout: 140_000 });
    assert.equal(result.status, 0, result.stderr);
    const [file] = readdirSync(out);
    assert.match(file, /^pd-.*\.json$/);
    const report = JSON.parse(readFileSync(join(out, file), 'utf8')) as {
      colocated: Run & { threads: number };
      disaggregated: Run & { prefillThreads: number; decodeThreads: number; sequences: { disaggregated: number; colocated: number }; kv: { bytes: number; ringBytes: number; directBytes: number; frames: number; wireSeconds: number; probe: Probe; probeBefore: Probe; probeAfter: Probe; linkMBps: number; rateOverProbe: number; frameCopies: Record<string, { frames: number; seconds: number; slow: number }> } };
      floors: Record<string, boolean>;
      ratios: Record<string, number>;
    };
    const { colocated, disaggregated } = report;
    assert.deepEqual([colocated.threads, disaggregated.prefillThreads, disaggregated.decodeThreads], [2, 1, 1]);
    for (const run of [colocated, disaggregated]) {
      assert.equal(run.longPrompts.requests, 2);
      assert.ok(run.streams.requests >= 2 && run.streams.itlMs.gaps > 0 && run.streams.tpotMs.p99 > 0);
    }
    // Every sequence (warm-up, streams, long prompts) ran as a pair, and its KV crossed the link.
    assert.equal(disaggregated.sequences.colocated, 0);
    assert.equal(disaggregated.sequences.disaggregated, 1 + disaggregated.streams.requests + 2);
    assert.ok(disaggregated.kv.bytes > 0 && disaggregated.kv.frames > 0 && disaggregated.kv.wireSeconds >= 0);
    // Every row went straight into the decode blocks, or through the shared-memory ring before a transfer's target reached the prefill engine: none inline on the socket.
    assert.ok(disaggregated.kv.directBytes > 0);
    assert.equal(disaggregated.kv.ringBytes + disaggregated.kv.directBytes, disaggregated.kv.bytes);
    // Each frame's copy timed: a direct write once, a ring frame at both ends (frames of transfers that ended early as well).
    const { write, read, direct, whole } = disaggregated.kv.frameCopies;
    assert.equal(write.frames, read.frames);
    assert.ok(direct.frames + write.frames >= disaggregated.kv.frames && direct.frames > 0 && direct.seconds > 0);
    for (const copies of [write, read, direct]) assert.ok(copies.slow >= 0 && copies.slow <= copies.frames);
    assert.deepEqual(whole, { frames: 0, seconds: 0, slow: 0 });
    // Probed before and after the run over the very path the rows took: straight into the decode replica's memory, copied by the prefill engine's thread.
    const { probe, probeBefore, probeAfter, linkMBps } = disaggregated.kv;
    for (const each of [probe, probeBefore, probeAfter]) {
      assert.equal(each.kind, 'unix');
      assert.equal(each.sharedMemory, true);
      assert.equal(each.directFrames, 4);
      assert.equal(each.bytes, 4 * each.frameBytes);
    }
    assert.equal(probeBefore.frameBytes, probeAfter.frameBytes);
    assert.equal(linkMBps, Math.max(probe.rateMBps, probeBefore.rateMBps, probeAfter.rateMBps));
    assert.deepEqual(Object.keys(report.floors).sort(), ['allDisaggregated', 'decodeItlP99AtMost06', 'decodeTpotP99AtMost06', 'transferAtLeast70PercentOfLink']);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
