/**
 * One connection between a prefill replica and a decode replica that KV
 * frames travel over, both ways (rows one way, acks the other), shared by
 * every transfer between the two. The link is pluggable: anything that
 * moves frames in order and says when the far end is gone is a KvLink.
 * Across hosts that is a TCP socket (socket-kv-link.ts); on one host a Unix
 * domain socket carrying the headers while the payloads go through a
 * shared-memory ring (shm-kv-link.ts).
 */
import { TesseraError } from '../core/errors.js';
import type { KvEndpoint, KvLinkKind } from './kv-endpoint.js';
import type { KvFrame, KvFrameHeader } from './kv-frame.js';
import { ShmKvLink, type RingKeeper } from './shm-kv-link.js';
import type { RingSlot } from '../engine/kv-messages.js';
import { connectSocketLink } from './socket-kv-link.js';

/** A received frame and how long it was on the wire (ms). */
export interface ReceivedFrame extends KvFrame {
  wireMs: number;
  /** Where its payload is when a ring keeper reads it (the payload here is then empty; wireMs is the write alone). */
  slot?: RingSlot;
  /** Bytes the writer put straight into this replica's memory (kv-direct.ts): the payload here is empty, wireMs is that copy. */
  directBytes?: number;
}

export interface KvLink {
  readonly kind: KvLinkKind;
  /** Where the far end is, for messages. */
  readonly peer: string;
  readonly closed: boolean;
  /** Whether payloads sent from here travel through shared memory (a Unix-socket link once both ends have the ring). */
  readonly sharedMemory?: boolean;
  /** Queues a frame; frames leave in the order sent. The payload must stay untouched until written (it is not copied). */
  send(header: KvFrameHeader, payload?: readonly Uint8Array[]): void;
  onFrame(handler: (frame: ReceivedFrame) => void): void;
  /** Called once, when the link breaks or closes. */
  onClose(handler: (why: string) => void): void;
  close(): void;
}

/** Connects to the first endpoint that answers, in the order given (best first). */
export async function connectKvLink(endpoints: readonly KvEndpoint[], timeoutMs: number, keeper?: RingKeeper): Promise<KvLink> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      const socket = await connectSocketLink(endpoint, timeoutMs);
      // One host: payloads through shared memory, the socket for headers (shm-kv-link.ts).
      return endpoint.kind === 'unix' ? ShmKvLink.dial(socket, undefined, keeper) : socket;
    } catch (error) {
      failures.push((error as Error).message);
    }
  }
  throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `could not reach the decode replica for a KV transfer: ${failures.join('; ')}`);
}
