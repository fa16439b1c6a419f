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
import type { KvRows, TransferId } from '../engine/kv-messages.js';
import { localHostId, type KvEndpoint } from './kv-endpoint.js';
import { rowsOf, type KvFrameHeader } from './kv-frame.js';
import type { KvLink, ReceivedFrame } from './kv-link.js';
import { ShmKvLink } from './shm-kv-link.js';
import { SocketKvLink } from './socket-kv-link.js';

/** What a KV transfer delivers, in order: rows, then the commit (or an abort at any point). */
export interface KvReceiver {
  rows(rows: KvRows): void;
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
}

export class KvListener {
  private readonly expected = new Map<TransferId, Expected>();
  private readonly links = new Set<KvLink>();

  private constructor(
    private readonly servers: Server[],
    readonly endpoints: KvEndpoint[],
    private readonly unixPath: string | undefined,
    private readonly shape: KvShape,
  ) {}

  static async start(options: KvListenerOptions): Promise<KvListener> {
    const servers: Server[] = [];
    const endpoints: KvEndpoint[] = [];
    const accept = (kind: KvEndpoint['kind']): Server =>
      createServer((socket) => {
        const link = new SocketKvLink(socket, kind, `${socket.remoteAddress ?? 'unix'}:${socket.remotePort ?? ''}`);
        // A peer on this host may offer a shared-memory ring for its payloads.
        listener.accept(kind === 'unix' ? ShmKvLink.accept(link) : link);
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
    listener = new KvListener(servers, endpoints, unixPath, options.shape);
    return listener;
  }

  /** Frames of `transfer` go to `receiver` from now on. */
  expect(transfer: TransferId, receiver: KvReceiver): void {
    this.expected.set(transfer, { receiver, link: undefined, stats: { bytes: 0, activeMs: 0, frames: 0, openedAt: 0 } });
  }

  /** No more frames of `transfer` are wanted (it finished, failed or was cancelled). */
  forget(transfer: TransferId): void {
    this.expected.delete(transfer);
  }

  close(): void {
    for (const server of this.servers) server.close();
    for (const link of this.links) link.close();
    if (this.unixPath) rmSync(this.unixPath, { force: true });
  }

  private accept(link: KvLink): void {
    this.links.add(link);
    const probes = new Map<string, Probe>();
    link.onFrame((frame) => this.receive(link, frame, probes));
    link.onClose((why) => {
      this.links.delete(link);
      for (const [transfer, entry] of this.expected) {
        if (entry.link !== link) continue;
        this.expected.delete(transfer);
        entry.receiver.abort(`the prefill replica's KV link (${link.peer}) broke before the transfer finished: ${why}`);
      }
    });
  }

  private receive(link: KvLink, frame: ReceivedFrame, probes: Map<string, Probe>): void {
    const header = frame.header;
    if (header.type === 'probe') return this.probe(link, frame, header, probes);
    if (header.type === 'ack' || header.type === 'probe-result') return;
    const entry = this.expected.get(header.transfer);
    if (!entry) return; // cancelled here meanwhile: drop what was already on its way
    try {
      if (header.type === 'open') return this.open(entry, link, header);
      if (header.type === 'rows') {
        entry.stats.bytes += frame.payload.byteLength;
        entry.stats.activeMs += frame.wireMs;
        entry.stats.frames++;
        return entry.receiver.rows(rowsOf(header, frame.payload));
      }
      this.expected.delete(header.transfer);
      if (header.type === 'commit') {
        link.send({ type: 'ack', transfer: header.transfer, bytes: entry.stats.bytes, activeMs: entry.stats.activeMs });
        entry.receiver.commit(header.ids, entry.stats);
      } else entry.receiver.abort(`the prefill replica gave up the transfer: ${header.message}`);
    } catch (error) {
      this.expected.delete(header.transfer);
      link.send({ type: 'abort', transfer: header.transfer, message: (error as Error).message });
      entry.receiver.abort((error as Error).message);
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
  }

  private probe(link: KvLink, frame: ReceivedFrame, header: Extract<KvFrameHeader, { type: 'probe' }>, probes: Map<string, Probe>): void {
    const probe = probes.get(header.probe) ?? { bytes: 0, activeMs: 0, firstAt: performance.now() - frame.wireMs };
    probes.set(header.probe, probe);
    probe.bytes += frame.payload.byteLength;
    probe.activeMs += frame.wireMs;
    if (!header.last) return;
    probes.delete(header.probe);
    link.send({ type: 'probe-result', probe: header.probe, bytes: probe.bytes, activeMs: probe.activeMs, wallMs: performance.now() - probe.firstAt });
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
