/**
 * The control protocol between the coordinator (the process that runs the
 * engine) and its workers, over one framed TCP connection each: a JSON
 * header, then optional binary bytes (logits), in one frame.
 */
import type { LogitRows } from '../model/batch.js';
import type { ErrorCode } from '../core/errors.js';
import type { TraceEvent } from '../core/trace-event.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import type { MeshTransportKind } from '../parallel/transport.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { KvLayout } from './rank-runner.js';

export type ControlMessage =
  | { type: 'hello'; token: string; pid: number }
  | { type: 'refused'; message: string }
  | { type: 'assign'; rank: number; size: number; transport: MeshTransportKind }
  | { type: 'listening'; address: MeshAddress }
  | {
      type: 'plan';
      addresses: MeshAddress[];
      meshToken: string;
      modelPath: string;
      tokenizerPath?: string;
      tp: number;
      pp: number;
      /** Expert-parallel degree: MoE experts spread over each stage's tp ranks (1 or tp). */
      ep?: number;
      layers: [number, number][];
      /** The backend every rank computes with, and its threads per rank. */
      backend: RankBackend;
      /** Record spans and send them at shutdown. */
      trace?: boolean;
      threads?: number;
      /** Element type of the ranks' KV caches (default f32). */
      kvCacheDtype?: KvDtype;
    }
  | { type: 'ready'; bytesRead: number; loadMs: number }
  /** One forward pass over the segments of several sequences (RankRunner.stepBatch), in the driver's KV pool. */
  | { type: 'step'; pool: KvLayout; segments: StepSegment[] }
  /** Body: [rows, vocabSize] float32. Times are this rank's, for the step (src/parallel/step-clock.ts). */
  | { type: 'logits'; computeMs: number; waitMs: number; transferMs?: number; eventLoopMs?: number }
  /** A rank's step-time sums, sent once as it shuts down: decode steps (one token per sequence) and the rest. */
  | { type: 'stats'; rank: number; transport: string; decode: RankStepSums; other: RankStepSums }
  | { type: 'shutdown' }
  /** A tracing rank's spans, sent once as it shuts down. */
  | { type: 'trace'; events: TraceEvent[] }
  | { type: 'error'; code: ErrorCode; message: string };

export type RankBackend = 'auto' | 'native' | 'reference';

/** Milliseconds summed over a rank's steps (StepTotals of src/parallel/step-clock.ts). */
export interface RankStepSums {
  steps: number;
  tokens: number;
  stepMs: number;
  computeMs: number;
  waitMs: number;
  transferMs: number;
  eventLoopMs: number;
}

/** One sequence's tokens in a step message. */
export interface StepSegment {
  /** The driver's block ids of the sequence. */
  blockTable: number[];
  rows: LogitRows;
  ids: number[];
  positions: number[];
}

export interface Envelope {
  message: ControlMessage;
  body: Uint8Array;
}

export function encodeControl(message: ControlMessage, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(message));
  // The body starts on a 4-byte boundary so float32 logits can be viewed in place.
  const headerBytes = 4 + json.byteLength;
  const padded = headerBytes + ((4 - (headerBytes % 4)) % 4);
  const out = new Uint8Array(padded + body.byteLength);
  new DataView(out.buffer).setUint32(0, padded, true);
  out.set(json, 4);
  out.fill(0x20, headerBytes, padded);
  out.set(body, padded);
  return out;
}

export function decodeControl(frame: Uint8Array): Envelope {
  const bodyStart = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, true);
  const message = JSON.parse(new TextDecoder().decode(frame.subarray(4, bodyStart))) as ControlMessage;
  return { message, body: frame.subarray(bodyStart) };
}
