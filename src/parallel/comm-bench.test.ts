/**
 * `bench comm` over shared memory: the ranks are real processes, the native
 * collectives and the raw link are measured beside the Transport's, and the
 * JSON says which path each figure took.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommBench } from './comm-bench.js';
import { loadNativeComm } from './native-comm.js';

test('bench comm --transport shm measures native all-reduce and all-gather and the ring link', { skip: loadNativeComm() === undefined ? 'the native addon is not built' : false, timeout: 120_000 }, async () => {
  const outDir = mkdtempSync(join(tmpdir(), 'tessera-comm-bench-'));
  const report = await runCommBench({ ranks: 2, transport: 'shm', sizes: [4096, 65536], budgetSeconds: 0.01, repetitions: 3, outDir });
  assert.equal(report.plane, 'shm');
  const names = new Set(report.collectives.map((figure) => `${figure.collective}/${figure.path}`));
  for (const name of ['all_reduce/native', 'all_reduce_copy_in/native', 'all_gather/native', 'all_reduce/transport', 'all_to_all/transport']) assert.ok(names.has(name), name);
  assert.equal(report.link.length, 1);
  assert.ok(report.link[0].oneWayGBps > 0 && report.collectives.every((figure) => figure.latencyUs > 0));
  assert.deepEqual(JSON.parse(readFileSync(report.file, 'utf8')).collectives.length, report.collectives.length);
  // Every repetition is recorded, and the all-reduces are set against the link repetition by repetition.
  assert.equal(report.repetitions, 3);
  assert.ok(report.collectives.every((figure) => figure.repetitionsUs.length === 3));
  assert.equal(report.link[0].oneWayRepetitionsGBps.length, 3);
  assert.deepEqual(report.allReduceOverLink.map((r) => `${r.collective}/${r.path}/${r.bytes}`), ['all_reduce/native/65536', 'all_reduce_copy_in/native/65536']);
  for (const r of report.allReduceOverLink) assert.ok(r.ratio > 0 && r.repetitionRatios.length === 3);
});
