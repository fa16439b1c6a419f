/** Builds a mesh of shared-memory transports inside one process, for the transport suite. */
import { check } from '../core/errors.js';
import { loadNativeComm } from './native-comm.js';
import { ShmTransport } from './shm-transport.js';
import { attachShmPeers, createShmSegment } from './shm-segment.js';

export function shmMesh(size: number): ShmTransport[] {
  const comm = loadNativeComm();
  check(comm !== undefined, 'TESSERA_ERR_BACKEND_UNAVAILABLE', 'the shm transport needs the native addon');
  const segments = Array.from({ length: size }, (_, rank) => createShmSegment(comm, rank, size));
  const paths = segments.map((segment) => segment.path);
  segments.forEach((segment, rank) => attachShmPeers(comm, segment, rank, paths));
  return segments.map((segment, rank) => new ShmTransport(rank, size, comm, segment.mesh));
}
