/**
 * Point-to-point messages between the ranks of a mesh. Every implementation
 * (in-process, TCP, Unix domain sockets, shared memory) keeps the same contract, checked by
 * the one shared suite in transport.case.ts:
 * - messages from one rank to another arrive whole and in the order sent;
 * - `send` may resolve before the peer receives; the caller leaves the
 *   buffer untouched until `send` resolves (sockets write it without a copy);
 * - when a peer goes away, pending and later `receive`s from it reject with
 *   TESSERA_ERR_RANK_LOST instead of hanging.
 */
export interface Transport {
  readonly rank: number;
  readonly size: number;
  /** A human name for logs and benchmark results ("tcp", "unix", "shm", "in-process"). */
  readonly kind: TransportKind;
  send(peer: number, message: Uint8Array): Promise<void>;
  /** The next message from `peer`; its bytes belong to the caller. */
  receive(peer: number): Promise<Uint8Array>;
  /**
   * The next message from `peer`, written into `into` (which must be the
   * message's length, else TESSERA_ERR_INTERNAL). Sockets write a message
   * straight there when this was called before it arrived, so a collective
   * that knows where its data goes allocates and copies nothing more.
   */
  receiveInto(peer: number, into: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export type TransportKind = 'in-process' | 'tcp' | 'unix' | 'shm';

/** How the ranks of a mesh reach each other: sockets (TCP, Unix) or shared memory on one host. */
export type MeshTransportKind = Exclude<TransportKind, 'in-process'>;

/** `--transport`: a kind, or auto (shm between ranks forked on this machine when the addon is built, else tcp). */
export type TransportChoice = MeshTransportKind | 'auto';

/** A float32 view of a received message, copying only when it is not 4-byte aligned. */
export function asFloats(message: Uint8Array): Float32Array {
  if (message.byteOffset % 4 === 0) return new Float32Array(message.buffer, message.byteOffset, message.byteLength / 4);
  return new Float32Array(message.slice().buffer);
}

/** The bytes of a float32 array, without copying. */
export function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
