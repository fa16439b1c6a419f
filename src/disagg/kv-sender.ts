/**
 * The prefill replica's end of KV links: one link per decode replica,
 * dialed on first use over the best endpoint both can reach and shared by
 * every transfer to it. A transfer's rows are queued while its link is
 * being dialed, then leave in order as the engine computes them; its
 * commit resolves when the decode replica acknowledges it, with the bytes
 * it received and their wire time. A broken link fails every transfer on
 * it (the decode replica died: the router has moved the request already).
 */
import { randomBytes } from 'node:crypto';
import { TesseraError } from '../core/errors.js';
import type { KvRows, TransferId } from '../engine/kv-messages.js';
import { usableEndpoints, type KvEndpoint, type KvLinkKind, type KvTransportChoice } from './kv-endpoint.js';
import { rowBytes, type KvFrameHeader } from './kv-frame.js';
import { connectKvLink, type KvLink } from './kv-link.js';
import type { KvShape } from './kv-listener.js';
import { ShmKvLink, type RingKeeper } from './shm-kv-link.js';

/**
 * A ring keeper on the prefill side (the engine's thread): a transfer whose
 * link's ring it keeps names that ring when its sequence is submitted, and
 * the engine writes its rows there as it computes them.
 */
export interface SenderKeeper extends RingKeeper {
  /** A probe through the link's kept ring, written by the keeper as rows are; false when the link has none. */
  probe(link: KvLink, probe: string, frames: number, frameBytes: number): boolean;
}

export interface SendStats {
  bytes: number;
  /** The receiver's summed wire time of the rows frames, ms. */
  activeMs: number;
  kind: KvLinkKind;
}

export interface ProbeResult {
  bytes: number;
  frames: number;
  kind: KvLinkKind;
  /** Whether the payloads went through shared memory. */
  sharedMemory: boolean;
  /** Of the frames, those the prefill engine wrote straight into the decode replica's memory (one copy, as rows go once the link offers it). */
  directFrames: number;
  /** Summed wire time of the frames at the receiver, ms (the same measure as a transfer's activeMs). */
  activeMs: number;
  /** First byte to last byte of the whole burst at the receiver, ms. */
  wallMs: number;
}

const CONNECT_TIMEOUT_MS = 5_000;
/** A fresh link's ring is written through before it is offered (shm-kv-link.ts): a second or two on a slow virtual machine. */
const RING_SETUP_WAIT_MS = 5_000;

export class OutgoingTransfer {
  private link: KvLink | undefined;
  private readonly queued: [KvFrameHeader, Uint8Array[]][] = [];
  private failure: Error | undefined;
  private lostHandlers: ((error: Error) => void)[] = [];
  private acked: ((stats: SendStats) => void) | undefined;
  private bytes = 0;

  constructor(readonly transfer: TransferId) {}

  /** Rows computed by the prefill; sent as soon as the link is up. */
  rows(rows: KvRows): void {
    const { transfer, layer, from, count, headStart, headCount } = rows;
    const dtype = rows.keys instanceof Uint16Array ? 'f16' : 'f32';
    this.bytes += rows.keys.byteLength + rows.values.byteLength;
    this.send({ type: 'rows', transfer, layer, from, count, headStart, headCount, dtype }, [rowBytes(rows.keys), rowBytes(rows.values)]);
  }

  /** The prefill's ids: the last frame; resolves once the decode replica has them. */
  commit(ids: number[]): Promise<SendStats> {
    if (this.failure) return Promise.reject(this.failure);
    const acked = new Promise<SendStats>((resolve, reject) => {
      this.acked = resolve;
      this.onLost(reject);
    });
    this.send({ type: 'commit', transfer: this.transfer, ids }, []);
    return acked;
  }

  abort(message: string): void {
    this.send({ type: 'abort', transfer: this.transfer, message }, []);
    this.fail(new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', message));
  }

  /** Called once if the transfer fails (link broken, receiver refused it). */
  onLost(handler: (error: Error) => void): void {
    if (this.failure) handler(this.failure);
    else this.lostHandlers.push(handler);
  }

  get sentBytes(): number {
    return this.bytes;
  }

  /** The link is up: what was queued goes out. */
  attach(link: KvLink): void {
    this.link = link;
    for (const [header, payload] of this.queued.splice(0)) link.send(header, payload);
  }

  received(header: KvFrameHeader, kind: KvLinkKind): void {
    if (header.type === 'ack') this.acked?.({ bytes: header.bytes, activeMs: header.activeMs, kind });
    else if (header.type === 'abort') this.fail(new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `the decode replica refused the KV transfer: ${header.message}`));
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const handler of this.lostHandlers.splice(0)) handler(error);
  }

  private send(header: KvFrameHeader, payload: Uint8Array[]): void {
    if (this.failure) return;
    if (this.link) this.link.send(header, payload);
    else this.queued.push([header, payload]);
  }
}

interface PooledLink {
  link: Promise<KvLink>;
  transfers: Map<TransferId, OutgoingTransfer>;
  probes: Map<string, (result: Omit<ProbeResult, 'frames' | 'kind' | 'sharedMemory'>) => void>;
}

export class KvSender {
  private readonly pool = new Map<string, PooledLink>();

  constructor(
    private readonly transport: KvTransportChoice,
    private readonly keeper?: SenderKeeper,
  ) {}

  /** Starts a transfer to the decode replica at `endpoints`; its rows may be given at once. */
  start(transfer: TransferId, endpoints: readonly KvEndpoint[], shape: KvShape): OutgoingTransfer {
    const outgoing = new OutgoingTransfer(transfer);
    let pooled: PooledLink;
    try {
      pooled = this.linkTo(endpoints);
    } catch (error) {
      outgoing.fail(error as Error);
      return outgoing;
    }
    pooled.transfers.set(transfer, outgoing);
    outgoing.onLost(() => pooled.transfers.delete(transfer));
    pooled.link.then(
      (link) => {
        link.send({ type: 'open', transfer, ...shape });
        outgoing.attach(link);
      },
      (error: Error) => outgoing.fail(error),
    );
    return outgoing;
  }

  /**
   * The link's bandwidth as KV frames see it: `frames` frames of `frameBytes`
   * filler sent back to back over the link a transfer to `endpoints` uses,
   * timed by the receiver as it times a transfer's rows.
   */
  async probe(endpoints: readonly KvEndpoint[], frames: number, frameBytes: number): Promise<ProbeResult> {
    const pooled = this.linkTo(endpoints);
    // A fresh link's ring takes a round trip to set up: probe the path transfers take once it is up.
    const link = await settled(pooled.link);
    const probe = randomBytes(6).toString('hex');
    const filler = new Uint8Array(frameBytes).fill(7);
    // Into the ring by the engine's thread when it keeps the link's ring: the path and copies rows take.
    const result = new Promise<Omit<ProbeResult, 'frames' | 'kind' | 'sharedMemory'>>((resolve, reject) => {
      pooled.probes.set(probe, resolve);
      link.onClose((why) => reject(new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `the KV link broke during a probe: ${why}`)));
    });
    if (!this.keeper?.probe(link, probe, frames, frameBytes)) for (let i = 0; i < frames; i++) link.send({ type: 'probe', probe, last: i === frames - 1 }, [filler]);
    return { ...(await result), frames, kind: link.kind, sharedMemory: link.sharedMemory === true };
  }

  /**
   * The kept ring of the link to `endpoints` (dialed if need be, its ring
   * set up first), which a transfer's sequence names so that the engine
   * writes its rows there; undefined when the link has none (TCP, no
   * shared memory, no keeper) or cannot be dialed (start() says why).
   */
  async ringFor(endpoints: readonly KvEndpoint[]): Promise<string | undefined> {
    try {
      const link = await settled(this.linkTo(endpoints).link);
      return link instanceof ShmKvLink ? link.keptRing : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    for (const pooled of this.pool.values()) void pooled.link.then((link) => link.close(), () => undefined);
    this.pool.clear();
  }

  private linkTo(endpoints: readonly KvEndpoint[]): PooledLink {
    const key = keyOf(endpoints);
    const existing = this.pool.get(key);
    if (existing) return existing;
    const usable = usableEndpoints(endpoints, this.transport);
    const pooled: PooledLink = { link: connectKvLink(usable, CONNECT_TIMEOUT_MS, this.keeper), transfers: new Map(), probes: new Map() };
    this.pool.set(key, pooled);
    pooled.link.then(
      (link) => {
        link.onFrame((frame) => {
          const header = frame.header;
          if (header.type === 'probe-result') pooled.probes.get(header.probe)?.({ bytes: header.bytes, activeMs: header.activeMs, wallMs: header.wallMs, directFrames: header.directFrames ?? 0 });
          else if (header.type === 'ack' || header.type === 'abort') {
            pooled.transfers.get(header.transfer)?.received(header, link.kind);
            pooled.transfers.delete(header.transfer);
          }
        });
        link.onClose((why) => {
          if (this.pool.get(key) === pooled) this.pool.delete(key);
          const error = new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `the KV link to the decode replica (${link.peer}) broke: ${why}`);
          for (const outgoing of pooled.transfers.values()) outgoing.fail(error);
        });
      },
      () => {
        if (this.pool.get(key) === pooled) this.pool.delete(key);
      },
    );
    return pooled;
  }
}

/**
 * The link once its shared-memory ring is in use or will not be, and the
 * reader has said whether it takes direct writes (so the first transfer's
 * rows and a probe take the path later ones do); bounded: an offer never
 * answered leaves the link as it is.
 */
async function settled(dialing: Promise<KvLink>): Promise<KvLink> {
  const link = await dialing;
  if (link instanceof ShmKvLink) await Promise.race([Promise.all([link.ringSettled, link.directSettled]), new Promise((resolve) => setTimeout(resolve, RING_SETUP_WAIT_MS))]);
  return link;
}

function keyOf(endpoints: readonly KvEndpoint[]): string {
  return JSON.stringify(endpoints);
}
