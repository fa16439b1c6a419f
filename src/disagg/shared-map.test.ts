/**
 * The native addon's mapShared, which the KV rings copy through: a writable
 * mapping's bytes are the file's (another descriptor reads them), a
 * read-only mapping of the same file sees what the writer put there, the
 * file's existing bytes survive the mapping's page touching, and malformed
 * arguments are refused by name rather than mapping something else.
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadNativeAddon } from '../backend/native/native-addon.js';

const load = loadNativeAddon();
const skip = load.ok ? false : `the addon is not built (${load.ok ? '' : load.reason})`;

test('mapShared: writes through a mapping are the file\'s; a read-only mapping sees them; existing bytes survive; bad arguments are refused', { skip }, () => {
  if (!load.ok) return;
  const path = join(tmpdir(), `tessera-shared-map-${process.pid}`);
  const fd = openSync(path, 'w+', 0o600);
  try {
    const bytes = 3 * 4096 + 100;
    ftruncateSync(fd, bytes);
    writeSync(fd, Uint8Array.of(9, 8, 7), 0, 3, 4096);
    const writer = load.addon.mapShared(fd, bytes, true);
    const reader = load.addon.mapShared(fd, bytes, false);
    assert.equal(writer.byteLength, bytes);
    assert.deepEqual([...reader.subarray(4096, 4099)], [9, 8, 7]);
    writer.set(Uint8Array.of(1, 2, 3, 4), bytes - 4);
    assert.deepEqual([...reader.subarray(bytes - 4)], [1, 2, 3, 4]);
    const back = new Uint8Array(4);
    readSync(fd, back, 0, 4, bytes - 4);
    assert.deepEqual([...back], [1, 2, 3, 4]);
    assert.throws(() => load.addon.mapShared(fd, 0, true), /whole number of bytes/);
    assert.throws(() => load.addon.mapShared(fd, 1.5, true), /whole number of bytes/);
    assert.throws(() => load.addon.mapShared(-1, 4096, false), /open descriptor/);
    assert.throws(() => load.addon.mapShared(fd, 4096, 1 as unknown as boolean), /writable must be a boolean/);
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
});
