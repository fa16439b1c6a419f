/**
 * Lengths and offsets a peer writes into shared memory, corrupted by hand:
 * a segment header whose rings or area lie outside its file, ring indices
 * claiming more bytes in flight than the ring holds, all-gather part
 * lengths and all-to-all tables past the bound or inconsistent. Each must
 * end in a coded error (TESSERA_ERR_PROTOCOL, _FRAME_TOO_LARGE) before any
 * copy, never an access outside the mapping (which would crash this
 * process). Two ranks of a mesh live in this process; "rank 1" is whatever
 * the test writes into its segment file (opened before the file is
 * unlinked). Random header values run through the same checks.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import type { NativeHandle } from '../backend/native/native-addon.js';
import { loadNativeComm, type NativeComm } from './native-comm.js';
import { shmFolder } from './shm-segment.js';
import { fuzzSettings } from '../testing/byte-mutation.js';

// SegmentHeader (native/src/comm/shm-segment.h): field offsets in bytes.
const RING_BYTES_AT = 24;
const RINGS_OFFSET_AT = 40;
const AREA_OFFSET_AT = 48;
const SLOTS_AT = 448;
const SLOT_BYTES = 128;
const RING_HEADER_BYTES = 128;
const RING = 4096;
const AREA = 65536;
const CODES = new Set(['TESSERA_ERR_PROTOCOL', 'TESSERA_ERR_FRAME_TOO_LARGE']);

const comm = loadNativeComm();

interface Rank {
  mesh: NativeHandle;
  path: string;
  /** The segment file, open for the test's writes after the mesh unlinks it. */
  fd: number;
}

function makeRank(native: NativeComm, rank: number): Rank {
  const path = join(shmFolder(), `tessera-shm-${process.pid}-${randomBytes(6).toString('hex')}`);
  const mesh = native.commShmCreate(path, rank, 2, RING, AREA);
  native.commSetStall(mesh, 3000);
  return { mesh, path, fd: openSync(path, 'r+') };
}

function readU64(fd: number, at: number): bigint {
  const bytes = Buffer.alloc(8);
  readSync(fd, bytes, 0, 8, at);
  return bytes.readBigUInt64LE(0);
}

function writeU64(fd: number, at: number, value: bigint): void {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64LE(BigInt.asUintN(64, value));
  writeSync(fd, bytes, 0, 8, at);
}

/** Two ranks of one mesh; `tamper` writes rank 1's segment before rank 0 maps it. */
function pair(native: NativeComm, tamper: (one: Rank) => void = () => undefined): [Rank, Rank] {
  const ranks: [Rank, Rank] = [makeRank(native, 0), makeRank(native, 1)];
  tamper(ranks[1]);
  native.commShmAttach(ranks[1].mesh, 0, ranks[0].path);
  native.commShmAttach(ranks[0].mesh, 1, ranks[1].path);
  return ranks;
}

function close(native: NativeComm, ranks: Rank[]): void {
  for (const rank of ranks) {
    native.commShmClose(rank.mesh);
    closeSync(rank.fd);
  }
}

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

test('shared-memory lengths a peer writes are bounded before any copy', { skip: comm === undefined ? 'the native addon is not built' : false }, async (t) => {
  const native = comm as NativeComm;
  const ringsOffset = 4096;

  await t.test('a segment whose rings or area lie outside its file is refused when mapped', () => {
    for (const [at, value] of [[RINGS_OFFSET_AT, 1n << 40n], [RING_BYTES_AT, 1n << 62n], [AREA_OFFSET_AT, -64n], [RINGS_OFFSET_AT, 4100n]] as const) {
      const ranks = [makeRank(native, 0), makeRank(native, 1)];
      assert.equal(readU64(ranks[1]!.fd, RINGS_OFFSET_AT), BigInt(ringsOffset), 'the header layout this test assumes');
      writeU64(ranks[1]!.fd, at, value);
      assert.equal(codeOf(() => native.commShmAttach(ranks[0]!.mesh, 1, ranks[1]!.path)), 'TESSERA_ERR_PROTOCOL', `field at ${at} = ${value}`);
      close(native, ranks);
    }
  });

  await t.test('ring indices claiming more than the ring holds are refused by the reader and the writer', () => {
    const ranks = pair(native);
    // The ring rank 1 writes into rank 0's segment: its head (rank 1's word) and tail (rank 0's).
    const ringAt = ringsOffset + (RING_HEADER_BYTES + RING) * 1;
    writeU64(ranks[0].fd, ringAt, BigInt(RING) * 5n);
    assert.equal(codeOf(() => native.commShmRingRead(ranks[0].mesh, 1, new Uint8Array(RING * 4), 0, RING * 4)), 'TESSERA_ERR_PROTOCOL');
    writeU64(ranks[0].fd, ringAt, 0n);
    writeU64(ranks[0].fd, ringAt + 64, 1n << 50n);
    assert.equal(codeOf(() => native.commShmRingWrite(ranks[1].mesh, 0, new Uint8Array(RING * 4), 0, RING * 4)), 'TESSERA_ERR_PROTOCOL');
    close(native, ranks);
  });

  await t.test('an all-gather part past the bound is TESSERA_ERR_FRAME_TOO_LARGE before anything is allocated', () => {
    const ranks = pair(native);
    const group = native.commGroup(ranks[0].mesh, Int32Array.of(0, 1), 0);
    // Rank 1 "published" round 0 with a part of 2^40 bytes in area half 0.
    writeU64(ranks[1].fd, SLOTS_AT + 8, 1n << 40n);
    writeU64(ranks[1].fd, SLOTS_AT, 1n);
    assert.equal(codeOf(() => native.commAllGather(group, new Uint8Array(16))), 'TESSERA_ERR_FRAME_TOO_LARGE');
    close(native, ranks);
  });

  await t.test('an all-to-all table with a part past the bound, or longer than its longest, is refused', () => {
    for (const [part, longest, code] of [[1n << 40n, 1n << 40n, 'TESSERA_ERR_FRAME_TOO_LARGE'], [5000n, 10n, 'TESSERA_ERR_PROTOCOL'], [64n, 1n << 63n, 'TESSERA_ERR_FRAME_TOO_LARGE']] as const) {
      const ranks = pair(native);
      const group = native.commGroup(ranks[0].mesh, Int32Array.of(0, 1), 1);
      const areaAt = Number(readU64(ranks[1].fd, AREA_OFFSET_AT));
      // Rank 1's table in its half 0: [part for member 0, part for member 1, longest].
      writeU64(ranks[1].fd, areaAt, part);
      writeU64(ranks[1].fd, areaAt + 16, longest);
      writeU64(ranks[1].fd, SLOTS_AT + SLOT_BYTES, 1n);
      assert.equal(codeOf(() => native.commAllToAll(group, [new Uint8Array(8), new Uint8Array(8)])), code, `part ${part}, longest ${longest}`);
      close(native, ranks);
    }
  });

  await t.test('random header layouts map cleanly or are refused with a code', () => {
    const field = fc.constantFrom(RINGS_OFFSET_AT, RING_BYTES_AT, AREA_OFFSET_AT);
    const value = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: 0n, max: 1n << 20n }), fc.constantFrom(0n, 64n, 1n << 63n), { arbitrary: fc.constantFrom(4096n, 8192n, 16384n, 20480n), weight: 3 });
    const cases = fc.sample(fc.tuple(field, value), fuzzSettings(24));
    const outcomes = new Map<string, number>();
    for (const [at, written] of cases) {
      const ranks = [makeRank(native, 0), makeRank(native, 1)];
      writeU64(ranks[1]!.fd, at, written);
      const code = codeOf(() => {
        native.commShmAttach(ranks[0]!.mesh, 1, ranks[1]!.path);
        // A layout that passed is used: a ring read and write with rank 1.
        native.commShmRingRead(ranks[0]!.mesh, 1, new Uint8Array(64), 0, 64);
        native.commShmRingWrite(ranks[0]!.mesh, 1, new Uint8Array(64), 0, 64);
      });
      assert.ok(code === 'ok' || CODES.has(code), `field at ${at} = ${written}: ${code}`);
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
      close(native, ranks);
    }
    t.diagnostic(`shm layout fuzz: ${cases.length} cases: ${[...outcomes].map(([code, n]) => `${code} ${n}`).join(', ')}`);
  });
});
