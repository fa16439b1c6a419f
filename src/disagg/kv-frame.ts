/**
 * The frames of a KV link. On the wire a frame is
 *
 *   [u32 LE bodyLength] [u32 LE headerLength] [header: JSON, space-padded] [payload]
 *
 * with the header padded so the payload starts 8-byte aligned inside the
 * body: a received body is one owned buffer, and the keys and values are
 * typed-array views on it, handed to the engine's thread without a copy.
 * A rows payload is keys then values, each [count, headCount, headDim] of
 * the cache's element type (f32, or f16 bits).
 */
import { TesseraError } from '../core/errors.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { KvRows, TransferId } from '../engine/kv-messages.js';
import type { KvRowData } from '../engine/kv-rows.js';

export type KvFrameHeader =
  /** Sender → receiver, first: the shape of what follows, checked against the receiver's model. */
  | { type: 'open'; transfer: TransferId; numLayers: number; numKvHeads: number; headDim: number; dtype: KvDtype }
  | { type: 'rows'; transfer: TransferId; layer: number; from: number; count: number; headStart: number; headCount: number; dtype: KvDtype }
  /** The prefill's sampled ids: everything of the transfer has been sent. */
  | { type: 'commit'; transfer: TransferId; ids: number[] }
  | { type: 'abort'; transfer: TransferId; message: string }
  /** Receiver → sender, after a commit: bytes of rows received, and the time they were on the wire. */
  | { type: 'ack'; transfer: TransferId; bytes: number; activeMs: number }
  /** Bandwidth probe: `bytes` of filler in the payload; the last one asks for the result. */
  | { type: 'probe'; probe: string; last: boolean }
  /** `directFrames`: of the probe's frames, those written straight into the receiver's memory (kv-direct.ts). */
  | { type: 'probe-result'; probe: string; bytes: number; activeMs: number; wallMs: number; directFrames?: number };

export interface KvFrame {
  header: KvFrameHeader;
  /** The payload, a view on the frame's own buffer. */
  payload: Uint8Array;
}

const ALIGN = 8;

/** The prefix of a frame (lengths and header) for a payload of `payloadBytes`; the payload is written after it as is. */
export function framePrefix(header: KvFrameHeader | { type: string }, payloadBytes: number): Buffer {
  const json = JSON.stringify(header);
  const headerBytes = Buffer.byteLength(json);
  const padded = Math.ceil((4 + headerBytes) / ALIGN) * ALIGN - 4;
  const prefix = Buffer.alloc(8 + padded, 0x20);
  prefix.writeUInt32LE(4 + padded + payloadBytes, 0);
  prefix.writeUInt32LE(padded, 4);
  prefix.write(json, 8, 'utf8');
  return prefix;
}

/** A frame body (everything after its length) as header and payload. */
export function parseFrame(body: Uint8Array): KvFrame {
  if (body.byteLength < 4) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', 'a KV frame shorter than its header length');
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const headerLength = view.getUint32(0, true);
  if (4 + headerLength > body.byteLength) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', 'a KV frame header runs past its frame');
  let header: KvFrameHeader;
  try {
    header = JSON.parse(Buffer.from(body.buffer, body.byteOffset + 4, headerLength).toString('utf8')) as KvFrameHeader;
  } catch {
    throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', 'a KV frame header is not JSON: the peer does not speak this protocol');
  }
  return { header, payload: body.subarray(4 + headerLength) };
}

/** The bytes of a run of rows, without a copy. */
export function rowBytes(data: KvRowData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Keys and values of a rows frame, as views on its payload (copied only when the payload is not aligned). */
export function rowsOf(header: Extract<KvFrameHeader, { type: 'rows' }>, payload: Uint8Array): KvRows {
  const elementBytes = header.dtype === 'f16' ? 2 : 4;
  const half = payload.byteLength / 2;
  if (!Number.isInteger(half) || half % elementBytes !== 0) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `a KV rows frame of ${payload.byteLength} bytes is not keys and values of ${header.dtype}`);
  const bytes = payload.byteOffset % ALIGN === 0 ? payload : payload.slice();
  const view = (offset: number): KvRowData =>
    header.dtype === 'f16' ? new Uint16Array(bytes.buffer, bytes.byteOffset + offset, half / 2) : new Float32Array(bytes.buffer, bytes.byteOffset + offset, half / 4);
  const { transfer, layer, from, count, headStart, headCount } = header;
  return { transfer, layer, from, count, headStart, headCount, keys: view(0), values: view(half) };
}
