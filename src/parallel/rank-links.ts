/**
 * A rank's links to the rest of its mesh, made in two steps around the
 * plan exchange: `RankEndpoint.open` before (it listens, or creates the
 * shared-memory segment, and gives the address to announce), `connect` after
 * (with every rank's address). The result is the Transport (shared-memory
 * rings, or sockets) and, when every rank has one, the native mesh the
 * collectives run on (the same segments, or the addon's own sockets).
 * A rank makes one endpoint per plan generation; the native meshes carry
 * the generation as their abort tag (abortCollectives(generation)).
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeHandle } from '../backend/native/native-addon.js';
import { TesseraError } from '../core/errors.js';
import { loadNativeComm, nativeCall, type NativeComm } from './native-comm.js';
import { ShmTransport } from './shm-transport.js';
import { attachShmPeers, createShmSegment, type ShmSegment } from './shm-segment.js';
import { MeshListener, connectMesh, type MeshAddress, type SocketAddress } from './socket-transport.js';
import type { MeshTransportKind, Transport } from './transport.js';

/** The mesh native collectives run on. */
export interface NativeMesh {
  comm: NativeComm;
  mesh: NativeHandle;
  kind: 'shm' | 'socket';
}

export interface RankLinks {
  transport: Transport;
  native?: NativeMesh;
}

/** Closes both planes: the transport (an shm transport closes its segment, unlinking it if a peer never mapped it) and the addon's sockets. */
export async function closeLinks(links: RankLinks): Promise<void> {
  await links.transport.close();
  if (links.native?.kind === 'socket') links.native.comm.commSocketClose(links.native.mesh);
}

/** How long the addon's sockets wait for the peers to connect. */
const CONNECT_TIMEOUT_MS = 60_000;

export class RankEndpoint {
  /** The links took over the listener, segment and data socket (or close() released them). */
  private handedOver = false;

  private constructor(
    readonly address: MeshAddress,
    private readonly rank: number,
    private readonly size: number,
    private readonly listener?: MeshListener,
    private readonly segment?: ShmSegment,
    private readonly data?: NativeMesh,
  ) {}

  /**
   * Listens (tcp/unix, on `host` for tcp) or creates this rank's segment
   * (shm). `generation` (≥ 1) tags the native mesh for aborts of that plan.
   */
  static async open(kind: MeshTransportKind, rank: number, size: number, host = '127.0.0.1', generation = 0): Promise<RankEndpoint> {
    const comm = loadNativeComm();
    if (kind === 'shm') {
      if (!comm) throw new TesseraError('TESSERA_ERR_BACKEND_UNAVAILABLE', '--transport shm needs the native addon; build it (npm run build:native) or use --transport tcp');
      const segment = createShmSegment(comm, rank, size);
      comm.commSetTag(segment.mesh, generation);
      return new RankEndpoint({ kind: 'shm', path: segment.path }, rank, size, undefined, segment);
    }
    const listener = await MeshListener.open(kind, host);
    if (!comm) return new RankEndpoint(listener.address, rank, size, listener);
    const mesh = nativeCall(() => comm.commSocketCreate(rank, size));
    comm.commSetTag(mesh, generation);
    const where = kind === 'unix' ? join(tmpdir(), `tessera-data-${process.pid}-${randomBytes(4).toString('hex')}.sock`) : host;
    const bound = nativeCall(() => comm.commSocketListen(mesh, kind === 'unix', where));
    const data = kind === 'unix' ? bound : `${host.includes(':') ? `[${host}]` : host}:${bound}`;
    return new RankEndpoint({ ...listener.address, data }, rank, size, listener, undefined, { comm, mesh, kind: 'socket' });
  }

  /** Connects to every rank (`addresses` in rank order, this one's included), both planes. */
  async connect(addresses: readonly MeshAddress[], token: string): Promise<RankLinks> {
    if (this.handedOver) throw new TesseraError('TESSERA_ERR_INTERNAL', 'a rank endpoint connects once');
    this.handedOver = true;
    try {
      return await this.connectPlanes(addresses, token);
    } catch (error) {
      this.release();
      throw error;
    }
  }

  /** Releases what connect() never took: the listener, the segment (unlinked), the data socket. */
  close(): void {
    if (this.handedOver) return;
    this.handedOver = true;
    this.release();
  }

  private release(): void {
    this.listener?.close();
    if (this.segment) loadNativeComm()?.commShmClose(this.segment.mesh);
    if (this.data) this.data.comm.commSocketClose(this.data.mesh);
  }

  private async connectPlanes(addresses: readonly MeshAddress[], token: string): Promise<RankLinks> {
    if (this.segment) return this.connectShm(addresses);
    const sockets = addresses.filter((address): address is SocketAddress => address.kind !== 'shm');
    if (sockets.length !== addresses.length || !this.listener) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'a mesh mixes shared-memory and socket ranks; give every rank one --transport');
    const transport = await connectMesh(this.rank, sockets, this.listener, token);
    // Native collectives only when every rank opened a data socket: all ranks decide alike.
    const endpoints = sockets.map((address) => address.data);
    if (!this.data || endpoints.some((endpoint) => endpoint === undefined)) {
      if (this.data) this.data.comm.commSocketClose(this.data.mesh);
      return { transport };
    }
    const data = this.data;
    try {
      nativeCall(() => data.comm.commSocketConnect(data.mesh, endpoints as string[], token, CONNECT_TIMEOUT_MS));
    } catch (error) {
      await transport.close();
      throw error;
    }
    applyDeadline(data);
    return { transport, native: data };
  }

  private connectShm(addresses: readonly MeshAddress[]): RankLinks {
    const segment = this.segment as ShmSegment;
    const comm = loadNativeComm() as NativeComm;
    const paths = addresses.map((address) => {
      if (address.kind !== 'shm') throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'a mesh mixes shared-memory and socket ranks; give every rank one --transport');
      return address.path;
    });
    if (paths.length !== this.size) throw new TesseraError('TESSERA_ERR_INTERNAL', `the plan names ${paths.length} ranks for a mesh of ${this.size}`);
    attachShmPeers(comm, segment, this.rank, paths);
    const native: NativeMesh = { comm, mesh: segment.mesh, kind: 'shm' };
    applyDeadline(native);
    return { transport: new ShmTransport(this.rank, this.size, comm, segment.mesh), native };
  }
}

/** TESSERA_COMM_DEADLINE_MS: a native wait with no progress for that long fails with TESSERA_ERR_RANK_LOST. */
function applyDeadline(native: NativeMesh): void {
  const ms = Number(process.env.TESSERA_COMM_DEADLINE_MS);
  if (Number.isFinite(ms) && ms > 0) native.comm.commSetStall(native.mesh, ms);
}
