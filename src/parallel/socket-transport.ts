/**
 * The Transport of ranks in different processes or machines: framed stream
 * sockets, TCP (Nagle off) or Unix domain, two per pair of ranks, one per
 * direction. Every rank dials every other rank and reads only from the
 * sockets it dialed, because only a dialed socket can take `onread`, which
 * lets the kernel write payloads straight into their final buffers
 * (frame-reader.ts); it writes on the sockets it accepted. Each dialed
 * connection opens with a challenge-response greeting over the mesh token
 * with fresh nonces (mesh-greeting.ts: the token never crosses, a recorded
 * greeting is worthless), so a stray connection is refused. An accepted
 * socket carries nothing from the dialer after its greeting; a dialed one
 * carries frames no larger than MAX_MESH_FRAME, of the size its receiver
 * expects. The frames themselves travel in clear (README "Security model").
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check } from '../core/errors.js';
import { FrameReader } from './frame-reader.js';
import { FramedSocket, readInto } from './framed-socket.js';
import { acceptGreeting, dialGreeting } from './mesh-greeting.js';
import { rankLost } from './message-queue.js';
import type { Transport, TransportKind } from './transport.js';

export type SocketKind = Exclude<TransportKind, 'in-process' | 'shm'>;

/** Largest message between ranks (activations of a step): far above any real step, far below what would exhaust a rank. */
const MAX_MESH_FRAME = 2 ** 30;

/**
 * Where a rank accepts its peers: a socket (with `data`, the addon's own
 * data-plane socket for native collectives, "host:port" or a path), or a
 * shared-memory segment on this host.
 */
export type MeshAddress = SocketAddress | { kind: 'shm'; path: string };
export type SocketAddress = { kind: 'tcp'; host: string; port: number; data?: string } | { kind: 'unix'; path: string; data?: string };

export class SocketTransport implements Transport {
  constructor(
    readonly rank: number,
    readonly size: number,
    readonly kind: SocketKind,
    /** [size]: the sockets this rank dialed, read from; undefined at its own index. */
    private readonly incoming: (FramedSocket | undefined)[],
    /** [size]: the sockets this rank accepted, written to. */
    private readonly outgoing: (FramedSocket | undefined)[],
  ) {}

  send(peer: number, message: Uint8Array): Promise<void> {
    return this.peer(this.outgoing, peer).send(message);
  }

  receive(peer: number): Promise<Uint8Array> {
    return this.peer(this.incoming, peer).receive();
  }

  receiveInto(peer: number, into: Uint8Array): Promise<void> {
    return this.peer(this.incoming, peer).receiveInto(into);
  }

  async close(): Promise<void> {
    for (const socket of [...this.incoming, ...this.outgoing]) socket?.close();
  }

  private peer(sockets: (FramedSocket | undefined)[], peer: number): FramedSocket {
    const socket = sockets[peer];
    check(socket !== undefined, 'TESSERA_ERR_INVALID_ARGUMENT', `rank ${this.rank} cannot talk to rank ${peer} in a mesh of ${this.size}`);
    return socket;
  }
}

/** A listening endpoint for a rank's peers; `host` is the address others reach this machine at. */
export class MeshListener {
  /** Connections that came before connectMesh asked for them (peers dial as soon as they know the addresses). */
  private readonly early: Socket[] = [];
  private handler: ((socket: Socket) => void) | undefined;

  private constructor(
    readonly server: Server,
    readonly address: SocketAddress,
  ) {
    server.on('connection', (socket: Socket) => (this.handler ? this.handler(socket) : this.early.push(socket)));
  }

  /** Hands every connection to `handler`, those that arrived before this call first. */
  onConnection(handler: (socket: Socket) => void): void {
    this.handler = handler;
    for (const socket of this.early.splice(0)) handler(socket);
  }

  static async open(kind: SocketKind, host = '127.0.0.1'): Promise<MeshListener> {
    const server = createServer({ noDelay: true });
    if (kind === 'unix') {
      const path = join(tmpdir(), `tessera-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
      await listen(server, () => server.listen(path));
      return new MeshListener(server, { kind, path });
    }
    await listen(server, () => server.listen(0, host));
    const bound = server.address();
    check(bound !== null && typeof bound === 'object', 'TESSERA_ERR_INTERNAL', 'the mesh listener has no TCP address');
    return new MeshListener(server, { kind, host, port: bound.port });
  }

  close(): void {
    this.server.close();
    if (this.address.kind === 'unix') rmSync(this.address.path, { force: true });
  }
}

/**
 * Connects this rank to every other rank of the mesh, both ways. Resolves
 * once all 2(size-1) connections are open and greeted.
 */
export async function connectMesh(rank: number, addresses: readonly SocketAddress[], listener: MeshListener, token: string): Promise<SocketTransport> {
  const size = addresses.length;
  const kind = listener.address.kind;
  const incoming: (FramedSocket | undefined)[] = new Array(size).fill(undefined);
  const outgoing: (FramedSocket | undefined)[] = new Array(size).fill(undefined);
  const accepted = acceptPeers(listener, rank, size, token, outgoing);
  const dialed = addresses.map(async (address, peer) => {
    if (peer === rank) return;
    const reader = new FrameReader();
    const socket = await dial(address, reader);
    const framed = new FramedSocket(socket, (why) => rankLost(peer, why), reader);
    framed.limit({ maxFrameBytes: MAX_MESH_FRAME });
    await dialGreeting(framed, token, size, rank, peer);
    incoming[peer] = framed;
  });
  await Promise.all([accepted, ...dialed]);
  listener.close();
  return new SocketTransport(rank, size, kind, incoming, outgoing);
}

/** Waits for a greeted connection from every other rank; refuses stray ones. */
function acceptPeers(listener: MeshListener, rank: number, size: number, token: string, peers: (FramedSocket | undefined)[]): Promise<void> {
  let waiting = size - 1;
  if (waiting === 0) return Promise.resolve();
  return new Promise((resolve) => {
    listener.onConnection((socket: Socket) => {
      socket.setNoDelay(true);
      let from = -1;
      const framed = new FramedSocket(socket, (why) => rankLost(from, why));
      // The offer and the proof; nothing more comes from a dialer on this socket.
      framed.limit({ maxFrameBytes: 1024, maxFrames: 2 });
      acceptGreeting(framed, token, size, rank).then((greeted) => {
        const why = 'refused' in greeted ? greeted.refused : peers[greeted.rank] !== undefined ? `rank ${greeted.rank} is already connected` : '';
        if (why || !('rank' in greeted)) {
          // A stray or hostile connection is dropped and logged; the mesh keeps waiting for its real peers.
          process.stderr.write(`tessera: rank ${rank} refused a mesh connection from ${socket.remoteAddress ?? 'a local socket'}: TESSERA_ERR_JOIN_REFUSED (${why})\n`);
          socket.destroy();
          return;
        }
        from = greeted.rank;
        peers[from] = framed;
        if (--waiting === 0) resolve();
      }, (error: Error) => {
        // A connection that breaks during its greeting is dropped alone; the real peers may still come.
        process.stderr.write(`tessera: rank ${rank} dropped a mesh connection during its greeting: ${(error as { code?: string }).code ?? 'closed'}: ${error.message}\n`);
        socket.destroy();
      });
    });
  });
}

/** An open socket to `address`, Nagle off for TCP; with `reader`, it reads into the reader's buffers. */
export function dial(address: SocketAddress, reader?: FrameReader): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const onread = reader && readInto(reader);
    const socket = address.kind === 'tcp' ? createConnection({ host: address.host, port: address.port, noDelay: true, onread }) : createConnection({ path: address.path, onread });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function listen(server: Server, start: () => void): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
    start();
  });
}
