/**
 * Direct KV writes (kv-direct.ts) into a real second process: the native
 * remoteWrite puts a run's bytes where the other process keeps them (split
 * differently on the two sides), the ranges of a run follow the decode
 * side's block table, a DirectWriter writes only what its target allows,
 * stops for a revoke (and says so), and falls back to the ring (returns
 * undefined, forgets the link's pools) once the other process is gone;
 * and the kernel's word for who is at the other end of a Unix socket,
 * which the writer checks the pools' process against.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import type { KvRowsHeader, TransferId } from '../engine/kv-messages.js';
import { DirectWriter, directMessageSchema, directRanges, type DirectPools } from './kv-direct.js';
import { SocketKvLink } from './socket-kv-link.js';

const load = loadNativeAddon();
const skip = load.ok ? false : `the addon is not built (${load.ok ? '' : load.reason})`;
const addonModule = fileURLToPath(new URL('../backend/native/native-addon.js', import.meta.url));

/** A process holding `bytes` zeroed bytes; it prints their address, and on each line in prints them (hex). */
async function holder(bytes: number): Promise<{ child: ChildProcessWithoutNullStreams; address: number; dump: () => Promise<Uint8Array> }> {
  const script = `
    const { loadNativeAddon } = await import(${JSON.stringify(addonModule)});
    const load = loadNativeAddon();
    const held = new Uint8Array(${bytes});
    console.log(load.addon.addressOf(held));
    process.stdin.on('data', () => console.log(Buffer.from(held).toString('hex')));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
  const lines = createInterface({ input: child.stdout });
  const next = async (): Promise<string> => (await once(lines, 'line'))[0] as string;
  const address = Number(await next());
  const dump = async (): Promise<Uint8Array> => {
    child.stdin.write('\n');
    return Uint8Array.from(Buffer.from(await next(), 'hex'));
  };
  return { child, address, dump };
}

test('directRanges: one [address, bytes] pair per decode block touched, in position order; a position without a block is refused', () => {
  const pools = { blockSize: 4, numKvHeads: 2, headDim: 2, dtype: 'f32' as const, numBlocks: 10 };
  // rowBytes 16; positions 2..9 over blocks [7, 3, 5]: block 7 slots 2-3, block 3 all, block 5 slots 0-1.
  assert.deepEqual(directRanges(pools, 1000, [7, 3, 5], 2, 8), [1000 + (7 * 4 + 2) * 16, 32, 1000 + 3 * 4 * 16, 64, 1000 + 5 * 4 * 16, 32]);
  assert.deepEqual(directRanges({ ...pools, dtype: 'f16' }, 0, [1], 0, 1), [4 * 8, 8]);
  // Heads [1, 2) of 2 (a tp 2 rank's share): 8 bytes of each 16-byte row, one pair per position.
  assert.deepEqual(directRanges(pools, 1000, [7, 3], 3, 2, { start: 1, count: 1 }), [1000 + (7 * 4 + 3) * 16 + 8, 8, 1000 + 3 * 4 * 16 + 8, 8]);
  assert.throws(() => directRanges(pools, 0, [1], 3, 2), /no reserved block/);
  assert.throws(() => directRanges(pools, 0, [10], 0, 1), /no reserved block/);
});

test('directMessageSchema: a peer\'s messages are checked field by field; a malformed one is refused with TESSERA_ERR_PROTOCOL naming the field', () => {
  const pools: DirectPools = { pid: 42, keys: [4096], values: [8192], numBlocks: 4, blockSize: 16, numKvHeads: 2, headDim: 8, dtype: 'f16', probe: { address: 65536, bytes: 1024 } };
  assert.deepEqual(directMessageSchema({ type: 'pools', pools }, 'm'), { type: 'pools', pools });
  assert.deepEqual(directMessageSchema({ type: 'target', transfer: 't', blocks: [3, 1], positions: 20 }, 'm'), { type: 'target', transfer: 't', blocks: [3, 1], positions: 20 });
  const refused = (value: unknown, field: RegExp): void => assert.throws(() => directMessageSchema(value, 'm'), (error: Error & { code?: string }) => error.code === 'TESSERA_ERR_PROTOCOL' && field.test(error.message));
  refused({ type: 'pools', pools: { ...pools, keys: [0] } }, /m\.pools\.keys\.0|m\.pools\.keys\[0\]/);
  refused({ type: 'pools', pools: { ...pools, pid: -1 } }, /m\.pools\.pid/);
  refused({ type: 'pools', pools: { ...pools, dtype: 'f8' } }, /m\.pools\.dtype/);
  refused({ type: 'pools', pools: { ...pools, extra: 1 } }, /m\.pools\.extra/);
  refused({ type: 'target', transfer: 't', blocks: [-1], positions: 1 }, /m\.blocks/);
  refused({ type: 'write-anywhere' }, /m\.type/);
});

test('remoteWrite: parts land end to end in another process at the ranges given, split differently; bad arguments are refused', { skip }, async () => {
  if (!load.ok) return;
  const { child, address, dump } = await holder(64);
  try {
    const parts = [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6, 7, 8)];
    assert.equal(load.addon.remoteWrite(child.pid!, parts, Float64Array.of(address + 10, 2, address + 40, 6)), 8);
    const held = await dump();
    assert.deepEqual([...held.subarray(10, 12)], [1, 2]);
    assert.deepEqual([...held.subarray(40, 46)], [3, 4, 5, 6, 7, 8]);
    assert.equal(held.reduce((sum, byte) => sum + byte, 0), 36, 'nothing else was written');
    assert.throws(() => load.addon.remoteWrite(child.pid!, parts, Float64Array.of(address, 7)), /the parts hold 8 bytes but the ranges 7/);
    assert.throws(() => load.addon.remoteWrite(0, parts, Float64Array.of(address, 8)), /pid must be a process id/);
    assert.throws(() => load.addon.remoteWrite(child.pid!, parts, Float64Array.of(address + 0.5, 8)), /not a whole address/);
  } finally {
    child.kill('SIGKILL');
  }
});

test('DirectWriter: writes a run into the target\'s blocks, refuses what the target does not cover, stops at a revoke, and gives the link up once the process is gone', { skip }, async () => {
  if (!load.ok) return;
  // Decode pools of 2 layers × 4 blocks of 2 positions × 1 head × 2 dims, f32: 8 bytes a row, 16 a block, 64 a pool.
  const { child, address, dump } = await holder(4 * 64 + 64);
  const pools: DirectPools = {
    pid: child.pid!,
    keys: [address, address + 128],
    values: [address + 64, address + 192],
    numBlocks: 4,
    blockSize: 2,
    numKvHeads: 1,
    headDim: 2,
    dtype: 'f32',
    probe: { address: address + 256, bytes: 64 },
  };
  const transfer = 'transfer-1' as TransferId;
  const writer = new DirectWriter(load.addon);
  const header: KvRowsHeader = { transfer, layer: 1, from: 1, count: 2, headStart: 0, headCount: 1, dtype: 'f32' };
  const keys = new Uint8Array(16).fill(0xaa);
  const values = new Uint8Array(16).fill(0xbb);
  try {
    assert.equal(writer.write(header, [keys, values], 'ring'), undefined, 'no pools or target yet');
    writer.apply('ring', { type: 'pools', pools });
    assert.equal(writer.write(header, [keys, values], 'ring'), undefined, 'no target yet');
    writer.apply('ring', { type: 'target', transfer, blocks: [3, 0], positions: 4 });
    assert.equal(writer.write({ ...header, headCount: 2 }, [keys, values], 'ring'), undefined, 'heads the pools do not have take the ring');
    assert.equal(writer.write({ ...header, from: 3 }, [keys, values], 'ring'), undefined, 'past the reserved positions');
    assert.equal(writer.write(header, [keys, values], 'other-ring'), undefined, 'another link');
    assert.ok((writer.write(header, [keys, values], 'ring') ?? -1) >= 0);
    const held = await dump();
    // Position 1 is block 3 slot 1, position 2 block 0 slot 0; layer 1's keys at 128, values at 192.
    const row = (base: number, block: number, slot: number): number[] => [...held.subarray(base + (block * 2 + slot) * 8, base + (block * 2 + slot + 1) * 8)];
    assert.deepEqual(row(128, 3, 1), new Array(8).fill(0xaa));
    assert.deepEqual(row(128, 0, 0), new Array(8).fill(0xaa));
    assert.deepEqual(row(192, 3, 1), new Array(8).fill(0xbb));
    assert.deepEqual(row(192, 0, 0), new Array(8).fill(0xbb));
    assert.equal(held.subarray(0, 256).reduce((sum, byte) => sum + byte, 0), 4 * 8 * (0xaa + 0xbb) / 2, 'nothing else of the pools written');
    assert.ok((writer.probe('ring', new Uint8Array(48).fill(1)) ?? -1) >= 0);
    assert.equal(writer.probe('ring', new Uint8Array(65)), undefined, 'larger than the probe buffer');
    assert.deepEqual(writer.apply('ring', { type: 'revoke', transfer }), { type: 'revoked', transfer });
    assert.equal(writer.write(header, [keys, values], 'ring'), undefined, 'nothing after a revoke');
    writer.apply('ring', { type: 'target', transfer, blocks: [3], positions: 4 });
    assert.equal(writer.write(header, [keys, values], 'ring'), undefined, 'a target short of blocks: the ring, nothing thrown');
    assert.equal(writer.has('ring'), true, 'the link keeps its pools');
    writer.apply('ring', { type: 'target', transfer, blocks: [3, 0], positions: 4 });
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(writer.write(header, [keys, values], 'ring'), undefined, 'the process is gone: the ring instead');
    assert.equal(writer.has('ring'), false, 'the link\'s pools are forgotten');
  } finally {
    child.kill('SIGKILL');
  }
});

test('SocketKvLink.peerPid: over a Unix socket the kernel names the connecting process (a real child); over TCP nothing', { skip }, async () => {
  const path = join(tmpdir(), `tessera-peer-${process.pid}.sock`);
  const server = createServer();
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const child = spawn(process.execPath, ['-e', `require('node:net').connect(${JSON.stringify(path)}); setInterval(() => {}, 1000);`]);
  try {
    const link = new SocketKvLink(await accepted, 'unix', 'child');
    assert.equal(link.peerPid, child.pid);
    assert.equal(new SocketKvLink(await accepted, 'tcp', 'child').peerPid, undefined, 'not asked over TCP');
    link.close();
  } finally {
    child.kill('SIGKILL');
    server.close();
    rmSync(path, { force: true });
  }
});
