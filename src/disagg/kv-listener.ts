/**
 * The decode replica's end of KV links: it listens on TCP and on a Unix
 * domain socket (for prefill replicas on the same host), and hands each
 * transfer's frames to the receiver registered for it. A transfer is bound
 * to the link its `open` came on: when that link breaks before the commit,
 * the receiver hears it at once (the prefill replica died mid-transfer)
 * and its blocks are freed; the router prefills again elsewhere. Each
 * transfer's bytes and wire time are counted, and acknowledged to the
 * sender after the commit. Bandwidth probes are answered on the same links.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { KvDtype } from '../core/kv-dtype.js';
import type { KvRows, KvRowsHeader, RingSlot, TransferId } from '../engine/kv-messages.js';
import { localHostId, type KvEndpoint } from './kv-endpoint.js';
import { rowsOf, type KvFrameHeader } from './kv-frame.js';
import type { KvLink, ReceivedFrame } from './kv-link.js';
import { ShmKvLink, type RingKeeper } from './shm-kv-link.js';
import { SocketKvLink } from './socket-kv-link.js';
import { sweepStaleSockets } from './stale-sockets.js';

/** What a KV transfer delivers, in order: rows, then the commit (or an abort at any point). */
export interface KvReceiver {
  rows(rows: KvRows): void;
  /** Rows whose bits are in a kept ring (the keeper reads them; only with a keeper). */
  ringRows?(rows: KvRowsHeader, slot: RingSlot): void;
  /** Rows the writer put straight into the reserved blocks (kv-direct.ts; only with a keeper). */
  directRows?(rows: KvRowsHeader): void;
  commit(ids: number[], stats: TransferStats): void;
  abort(message: string): void;
}

export interface TransferStats {
  /** Bytes of keys and values received. */
  bytes: number;
  /** Summed wire time of its rows frames (first byte to last byte of each), ms. */
  activeMs: number;
  /** Rows frames received (a bandwidth probe is run at their mean size). */
  frames: number;
  /** Of `bytes`, those that came through a shared-memory ring. */
  ringBytes: number;
  /** Of `bytes`, those the writer put straight into this replica's pools. */
  directBytes: number;
  /** performance.now() of the open frame's arrival. */
  openedAt: number;
}

/** The cache layout a transfer must match (the receiver's own). */
export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
  dtype: KvDtype;
}

export interface KvListenerOptions {
  /** TCP address to listen on, and the name to advertise when that is a wildcard (default: the host name). */
  host: string;
  port: number;
  advertiseHost?: string;
  /** Also listen on a Unix domain socket (default true). */
  unix?: boolean;
  shape: KvShape;
  /** Takes the shared-memory rings prefill replicas on this host offer, and reads their payloads (the engine's thread). */
  keeper?: ListenerKeeper;
  /** Told the time of each copy of a transfer's rows frame (not a probe's), as it becomes known. */
  onCopy?: (copy: FrameCopy) => void;
}

/**
 * One copy of a rows frame: `write`, the prefill engine's into a kept ring;
 * `read`, this engine's out of it; `direct`, the prefill engine's straight
 * into this engine's pools (kv-direct.ts); `whole`, a frame that came another way
 * (first byte to last on a socket, or both copies of a ring read here).
 * What the scheduler took from a copying thread shows as their slow tail.
 */
export interface FrameCopy {
  copy: 'write' | 'read' | 'direct' | 'whole';
  ms: number;
}

/** A ring keeper on the decode side: reads (or skips) each payload and reports it through `KvListener.ringRead`. */
export interface ListenerKeeper extends RingKeeper {
  skip(slot: RingSlot, probe: string | undefined): void;
  /** `transfer` opened on the kept ring's link: its writer may learn the reserved blocks (kv-direct.ts). */
  expose?(transfer: TransferId, ring: string): void;
}

interface Expected {
  receiver: KvReceiver;
  link: KvLink | undefined;
  stats: TransferStats;
}

interface Probe {
  bytes: number;
  activeMs: number;
  firstAt: number;
  /** Payloads the keeper has still to read, and whether the last frame came. */
  reading: number;
  last: boolean;
  link: KvLink;
  /** Frames written straight into this replica's memory (kv-direct.ts). */
  directFrames: number;
}

export class KvListener {
  private readonly expected = new Map<TransferId, Expected>();
  private readonly links = new Set<KvLink>();
  /** Every transfer's counts until it is forgotten (a kept ring's reads are credited after the commit too). */
  private readonly stats = new Map<TransferId, TransferStats>();
  private readonly probes = new Map<string, Probe>();

  private constructor(
    private readonly servers: Server[],
    readonly endpoints: KvEndpoint[],
    private readonly unixPath: string | undefined,
    private readonly shape: KvShape,
    private readonly keeper: ListenerKeeper | undefined,
    private readonly onCopy: ((copy: FrameCopy) => void) | undefined,
  ) {}

  static async start(options: KvListenerOptions): Promise<KvListener> {
    const servers: Server[] = [];
    const endpoints: KvEndpoint[] = [];
    const accept = (kind: KvEndpoint['kind']): Server =>
      createServer((socket) => {
        const link = new SocketKvLink(socket, kind, `${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''}`);
        // A peer on this host may offer a shared-memory ring for its payloads.
        listener.accept(kind === 'unix' ? ShmKvLink.accept(link, options.keeper) : link);
      });
    let unixPath: string | undefined;
    let listener!: KvListener;
    try {
      const tcp = accept('tcp');
      servers.push(tcp);
      await listen(tcp, { host: options.host, port: options.port });
      const port = (tcp.address() as { port: number }).port;
      const wildcard = options.host === '0.0.0.0' || options.host === '::';
      if (options.unix ?? true) {
        // Sockets SIGKILLed replicas left behind (their process gone, nothing answering) go first.
        await sweepStaleSockets(tmpdir());
        unixPath = join(tmpdir(), `tessera-kv-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
        const unix = accept('unix');
        servers.push(unix);
        await listen(unix, { path: unixPath });
        endpoints.push({ kind: 'unix', path: unixPath, hostId: localHostId() });
      }
      endpoints.push({ kind: 'tcp', host: options.advertiseHost ?? (wildcard ? hostname() : options.host), port });
    } catch (error) {
      for (const server of servers) server.close();
      throw error;
    }
    listener = new KvListener(servers, endpoints, unixPath, options.shape, options.keeper, options.onCopy);
    return listener;
  }

  /** Frames of `transfer` go to `receiver` from now on. */
  expect(transfer: TransferId, receiver: KvReceiver): void {
    const stats: TransferStats = { bytes: 0, activeMs: 0, frames: 0, ringBytes: 0, directBytes: 0, openedAt: 0 };
    this.stats.set(transfer, stats);
    this.expected.set(transfer, { receiver, link: undefined, stats });
  }

  /** No more frames of `transfer` are wanted (it finished, failed or was cancelled). */
  forget(transfer: TransferId): void {
    this.expected.delete(transfer);
    this.stats.delete(transfer);
  }

  /** The keeper has read a payload of a kept ring (for a transfer or a probe): its read time counts as wire time. */
  ringRead(read: { readMs: number; transfer: TransferId | undefined; probe: string | undefined }): void {
    if (read.transfer !== undefined) {
      const stats = this.stats.get(read.transfer);
      if (stats) stats.activeMs += read.readMs;
      this.onCopy?.({ copy: 'read', ms: read.readMs });
    }
    const probe = read.probe === undefined ? undefined : this.probes.get(read.probe);
    if (!probe || read.probe === undefined) return;
    probe.activeMs += read.readMs;
    probe.reading--;
    this.finishProbe(read.probe, probe);
  }

  close(): void {
    for (const server of this.servers) server.close();
    for (const link of this.links) link.close();
    if (this.unixPath) rmSync(this.unixPath, { force: true });
  }

  private accept(link: KvLink): void {
    this.links.add(link);
    link.onFrame((frame) => this.receive(link, frame));
    link.onClose((why) => {
      this.links.delete(link);
      for (const [transfer, entry] of this.expected) {
        if (entry.link !== link) continue;
        this.expected.delete(transfer);
        entry.receiver.abort(`the prefill replica's KV link (${link.peer}) broke before the transfer finished: ${why}`);
      }
    });
  }

  private receive(link: KvLink, frame: ReceivedFrame): void {
    const header = frame.header;
    if (header.type === 'probe') return this.probe(link, frame, header);
    if (header.type === 'ack' || header.type === 'probe-result') return;
    const entry = this.expected.get(header.transfer);
    let slot = frame.slot;
    try {
      if (!entry) return; // cancelled here meanwhile: drop what was already on its way
      if (header.type === 'open') return this.open(entry, link, header);
      if (header.type === 'rows' && frame.directBytes !== undefined) {
        entry.stats.bytes += frame.directBytes;
        entry.stats.directBytes += frame.directBytes;
        entry.stats.activeMs += frame.wireMs;
        entry.stats.frames++;
        this.onCopy?.({ copy: 'direct', ms: frame.wireMs });
        const { type: _rows, ...rows } = header;
        return entry.receiver.directRows!(rows);
      }
      if (header.type === 'rows') {
        entry.stats.bytes += slot?.bytes ?? frame.payload.byteLength;
        entry.stats.activeMs += frame.wireMs;
        entry.stats.frames++;
        entry.stats.ringBytes += slot?.bytes ?? 0;
        this.onCopy?.({ copy: slot ? 'write' : 'whole', ms: frame.wireMs });
        if (!slot) return entry.receiver.rows(rowsOf(header, frame.payload));
        const { type: _rows, ...rows } = header;
        slot = undefined; // the receiver's keeper reads it now
        return entry.receiver.ringRows!(rows, frame.slot!);
      }
      this.expected.delete(header.transfer);
      if (header.type === 'commit') {
        link.send({ type: 'ack', transfer: header.transfer, bytes: entry.stats.bytes, activeMs: entry.stats.activeMs });
        entry.receiver.commit(header.ids, entry.stats);
      } else entry.receiver.abort(`the prefill replica gave up the transfer: ${header.message}`);
    } catch (error) {
      if (!entry) return;
      this.expected.delete(header.transfer);
      link.send({ type: 'abort', transfer: header.transfer, message: (error as Error).message });
      entry.receiver.abort((error as Error).message);
    } finally {
      // A kept payload nobody took: the keeper lets its ring space go.
      if (slot) this.keeper?.skip(slot, undefined);
    }
  }

  private open(entry: Expected, link: KvLink, header: Extract<KvFrameHeader, { type: 'open' }>): void {
    const { numLayers, numKvHeads, headDim, dtype } = this.shape;
    if (header.numLayers !== numLayers || header.numKvHeads !== numKvHeads || header.headDim !== headDim || header.dtype !== dtype) {
      throw new Error(
        `the prefill replica's KV (${header.numLayers} layers × ${header.numKvHeads} KV heads × ${header.headDim}, ${header.dtype}) does not match this replica's (${numLayers} × ${numKvHeads} × ${headDim}, ${dtype}); give both the same model and --kv-cache-dtype`,
      );
    }
    entry.link = link;
    entry.stats.openedAt = performance.now();
    const ring = link instanceof ShmKvLink ? link.keptRing : undefined;
    if (ring !== undefined) this.keeper?.expose?.(header.transfer, ring);
  }

  private probe(link: KvLink, frame: ReceivedFrame, header: Extract<KvFrameHeader, { type: 'probe' }>): void {
    const probe = this.probes.get(header.probe) ?? { bytes: 0, activeMs: 0, firstAt: performance.now() - frame.wireMs, reading: 0, last: false, link, directFrames: 0 };
    this.probes.set(header.probe, probe);
    probe.bytes += frame.directBytes ?? frame.slot?.bytes ?? frame.payload.byteLength;
    if (frame.directBytes !== undefined) probe.directFrames++;
    probe.activeMs += frame.wireMs;
    probe.last ||= header.last;
    if (frame.slot) {
      // Read by the keeper as rows are: the probe's result waits for its reads.
      probe.reading++;
      return this.keeper?.skip(frame.slot, header.probe);
    }
    this.finishProbe(header.probe, probe);
  }

  private finishProbe(id: string, probe: Probe): void {
    if (!probe.last || probe.reading > 0) return;
    this.probes.delete(id);
    probe.link.send({ type: 'probe-result', probe: id, bytes: probe.bytes, activeMs: probe.activeMs, wallMs: performance.now() - probe.firstAt, directFrames: probe.directFrames });
  }
}

function listen(server: Server, address: { host: string; port: number } | { path: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
