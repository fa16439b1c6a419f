/**
 * A KvLink over a stream socket: TCP (Nagle off) or a Unix domain socket.
 * A frame's prefix and its payload parts go out in one corked write, so
 * the kernel sees one write per frame and the payload is never copied in
 * JavaScript; frames are read back with their wire times (kv-frame-reader.ts).
 */
import { connect, type Socket } from 'node:net';
import { loadNativeAddon } from '../backend/native/native-addon.js';
import { TesseraError } from '../core/errors.js';
import { describeEndpoint, type KvEndpoint, type KvLinkKind } from './kv-endpoint.js';
import { framePrefix, parseFrame, type KvFrameHeader } from './kv-frame.js';
import { KvFrameReader } from './kv-frame-reader.js';
import type { KvLink, ReceivedFrame } from './kv-link.js';
import type { ShmFrameHeader } from './shm-kv-link.js';

export class SocketKvLink implements KvLink {
  private readonly frameHandlers: ((frame: ReceivedFrame) => void)[] = [];
  private readonly closeHandlers: ((why: string) => void)[] = [];
  private ended = false;

  constructor(
    private readonly socket: Socket,
    readonly kind: KvLinkKind,
    readonly peer: string,
  ) {
    socket.setNoDelay?.(true);
    const reader = new KvFrameReader((frame) => {
      const parsed = parseFrame(frame.body);
      const received: ReceivedFrame = { ...parsed, wireMs: frame.lastByteAt - frame.firstByteAt };
      for (const handler of this.frameHandlers) handler(received);
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, performance.now());
      } catch (error) {
        socket.destroy(error as Error);
      }
    });
    socket.on('error', (error) => this.end(error.message));
    socket.on('close', () => this.end('the connection closed'));
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Also carries a shared-memory link's own frames (shm-kv-link.ts). */
  /**
   * Over a Unix domain socket, the process at the other end as the kernel
   * recorded it at connect time (SO_PEERCRED, through the native addon);
   * undefined over TCP or without the addon.
   */
  get peerPid(): number | undefined {
    if (this.kind !== 'unix') return undefined;
    // The descriptor of a Node socket is its handle's (not public API, but present on every Unix build).
    const fd = (this.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    const load = loadNativeAddon();
    if (fd === undefined || fd < 0 || !load.ok || typeof load.addon.peerPid !== 'function') return undefined;
    try {
      return load.addon.peerPid(fd);
    } catch {
      return undefined;
    }
  }

  send(header: KvFrameHeader | ShmFrameHeader, payload: readonly Uint8Array[] = []): void {
    if (this.ended) return;
    const bytes = payload.reduce((sum, part) => sum + part.byteLength, 0);
    this.socket.cork();
    this.socket.write(framePrefix(header, bytes));
    for (const part of payload) this.socket.write(part);
    this.socket.uncork();
  }

  onFrame(handler: (frame: ReceivedFrame) => void): void {
    this.frameHandlers.push(handler);
  }

  onClose(handler: (why: string) => void): void {
    if (this.ended) handler('the connection closed');
    else this.closeHandlers.push(handler);
  }

  close(): void {
    this.socket.end();
    this.socket.destroySoon();
    this.end('closed here');
  }

  private end(why: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const handler of this.closeHandlers.splice(0)) handler(why);
  }
}

/** Dials an endpoint; rejects when it refuses or does not answer within `timeoutMs`. */
export function connectSocketLink(endpoint: KvEndpoint, timeoutMs: number): Promise<SocketKvLink> {
  const peer = describeEndpoint(endpoint);
  return new Promise((resolve, reject) => {
    const socket = endpoint.kind === 'unix' ? connect({ path: endpoint.path }) : connect({ host: endpoint.host, port: endpoint.port, noDelay: true });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new SocketKvLink(socket, endpoint.kind, peer));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `${peer}: ${error.message}`));
    });
  });
}
