/**
 * Re-sharding a rank's weights: every slice composed from held bytes plus
 * new reads equals the slice read whole from the file, and the file bytes
 * read stay within the bytes the new layout adds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReferenceBackend } from '../backend/reference/reference-backend.js';
import { openModelFiles } from '../engine/model-files.js';
import { loadStageWeights, type SliceReader, type StagePlan } from '../model/shard-weights.js';
import { synthesize } from '../synth/synthesize.js';
import { fixture } from '../testing/fixtures.js';
import { HeldShards } from './held-shards.js';

interface Loaded {
  bytesRead: number;
  newBytes: number;
  reusedBytes: number;
  bytesHeld: number;
}

/** Loads `plan` through `held`, checking every composed slice against a direct read of the same range. */
function loadThrough(path: string, held: HeldShards, plan: StagePlan): Loaded {
  const files = openModelFiles(path);
  const direct = openModelFiles(path).store;
  try {
    held.begin(files.store);
    const checking: SliceReader = {
      readRows: (name, start, end) => {
        const bytes = held.readRows(name, start, end);
        assert.deepEqual(bytes, direct.readRows(name, start, end), `${name} rows [${start}, ${end})`);
        return bytes;
      },
      readColumns: (name, start, end) => {
        const bytes = held.readColumns(name, start, end);
        assert.deepEqual(bytes, direct.readColumns!(name, start, end), `${name} columns [${start}, ${end})`);
        return bytes;
      },
    };
    loadStageWeights(files.store, files.config, new ReferenceBackend(), plan, undefined, checking);
    held.finish();
    return { bytesRead: files.store.bytesRead, newBytes: held.newBytes, reusedBytes: held.reusedBytes, bytesHeld: held.bytesHeld };
  } finally {
    files.store.close();
    direct.close();
  }
}

function fullLoadBytes(path: string, plan: StagePlan): number {
  return loadThrough(path, new HeldShards(), plan).bytesRead;
}

async function checkMoves(path: string, layers: number): Promise<void> {
  const half = Math.ceil(layers / 2);
  const whole = fullLoadBytes(path, { tp: 1, tpRank: 0, startLayer: 0, endLayer: layers });
  const held = new HeldShards();
  // tp 2, rank 1 of stage [0, half) → tp 1 over every layer: the other half of stage 0's tensors and all of the rest.
  const first = loadThrough(path, held, { tp: 2, tpRank: 1, startLayer: 0, endLayer: half });
  assert.equal(first.bytesRead, first.newBytes, 'a fresh rank reads exactly its slices');
  const grown = loadThrough(path, held, { tp: 1, tpRank: 0, startLayer: 0, endLayer: layers });
  assert.ok(grown.bytesRead <= grown.newBytes, `read ${grown.bytesRead} of ${grown.newBytes} new bytes`);
  assert.ok(grown.reusedBytes > 0 && grown.bytesRead + grown.reusedBytes === grown.bytesHeld, 'held bytes were copied, not read again');
  assert.equal(grown.bytesHeld, whole, 'a tp 1 rank over every layer holds the whole model');
  // The same layout again: every slice is kept as it is, nothing read or copied.
  const same = loadThrough(path, held, { tp: 1, tpRank: 0, startLayer: 0, endLayer: layers });
  assert.deepEqual([same.bytesRead, same.newBytes, same.reusedBytes], [0, 0, whole]);
  // tp 1 → pp 2 stage 1 and tp 2: a subset of what is held, so nothing is read.
  const shrunk = loadThrough(path, held, { tp: 2, tpRank: 0, startLayer: half, endLayer: layers });
  assert.equal(shrunk.bytesRead, 0);
  assert.equal(shrunk.newBytes, 0);
  assert.equal(shrunk.bytesHeld, fullLoadBytes(path, { tp: 2, tpRank: 0, startLayer: half, endLayer: layers }), 'slices not in the new layout are dropped');
}

test('re-sharding Q8_0 weights reads only the new byte ranges, and the composed slices equal direct reads', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-held-'));
  try {
    const path = join(dir, 'tiny.gguf');
    await synthesize({ preset: 'tiny', arch: 'llama', dtype: 'q8_0', out: path, format: 'gguf', seed: 5, layers: 4 });
    await checkMoves(path, 4);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('re-sharding stories260K (f32, uneven row-parallel cuts) composes the same bytes', async (t) => {
  const path = fixture(t, 'stories260K.bin');
  if (!path) return;
  await checkMoves(path, 5);
});
