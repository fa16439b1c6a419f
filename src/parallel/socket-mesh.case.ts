/** Builds a mesh of real sockets inside one process, for the transport suite; `sealed` overrides TESSERA_SEAL_DATA. */
import { randomBytes } from 'node:crypto';
import { MeshListener, connectMesh, type SocketKind } from './socket-transport.js';
import type { Transport } from './transport.js';

export async function socketMesh(kind: SocketKind, size: number, sealed?: boolean): Promise<Transport[]> {
  const token = randomBytes(8).toString('hex');
  const listeners = await Promise.all(Array.from({ length: size }, () => MeshListener.open(kind)));
  const addresses = listeners.map((listener) => listener.address);
  return Promise.all(listeners.map((listener, rank) => connectMesh(rank, addresses, listener, token, sealed)));
}
