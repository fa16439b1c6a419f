/**
 * Making and joining the shared-memory segments of a mesh on one host: each
 * rank creates its own segment (a file in /dev/shm, named after its pid),
 * says where it is through the plan, and maps every peer's. The native side
 * unlinks each file once every peer has mapped it (and a rank closing a
 * segment no peer mapped yet unlinks it); segments that dead processes left
 * behind (killed before their peers mapped them) are swept whenever a new
 * one is made, so each re-plan of a mesh cleans up after the last.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeHandle } from '../backend/native/native-addon.js';
import { nativeCall, type NativeComm } from './native-comm.js';

/** Bytes of each Transport ring (one per sender in every segment): TESSERA_SHM_RING_KIB, default 1 MiB. */
export function shmRingBytes(): number {
  return kibFromEnvironment('TESSERA_SHM_RING_KIB', 1024) * 1024;
}

/** Bytes of each rank's collective area (two halves): TESSERA_SHM_AREA_MIB, default 16 MiB. */
export function shmAreaBytes(): number {
  return kibFromEnvironment('TESSERA_SHM_AREA_MIB', 16) * 2 ** 20;
}

function kibFromEnvironment(name: string, fallback: number): number {
  const value = Number(process.env[name]);
  return Number.isInteger(value) && value > 0 ? value : fallback;
}

/** Where segments live: TESSERA_SHM_DIR, else /dev/shm (memory), else the temp folder. */
export function shmFolder(): string {
  return process.env.TESSERA_SHM_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
}

export interface ShmSegment {
  mesh: NativeHandle;
  path: string;
}

/** This rank's new segment, for a mesh of `size`. */
export function createShmSegment(comm: NativeComm, rank: number, size: number): ShmSegment {
  const folder = shmFolder();
  comm.commShmSweep(folder);
  const path = join(folder, `tessera-shm-${process.pid}-${randomBytes(6).toString('hex')}`);
  return { mesh: nativeCall(() => comm.commShmCreate(path, rank, size, shmRingBytes(), shmAreaBytes())), path };
}

/** Maps every peer's segment (`paths[rank]`; this rank's own is skipped). */
export function attachShmPeers(comm: NativeComm, segment: ShmSegment, rank: number, paths: readonly string[]): void {
  paths.forEach((path, peer) => {
    if (peer !== rank) nativeCall(() => comm.commShmAttach(segment.mesh, peer, path));
  });
}
