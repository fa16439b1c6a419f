/**
 * The control protocol between the coordinator (the process that runs the
 * engine) and its workers, over framed TCP connections: a JSON header, then
 * optional binary bytes (logits), in one frame. Each worker has two: the
 * control connection (join, plans, steps) and the heartbeat connection,
 * served by a thread of its own so that beats and aborts get through while
 * the rank's main thread computes. Every message about a mesh names its
 * plan generation, so messages of a mesh that was torn down are told apart.
 * Both connections run inside TLS keyed by the join token (link-security.ts),
 * so the token itself never crosses; every message is checked against its
 * schema (control-schema.ts) as it is decoded.
 */
import type { LogitRows } from '../model/batch.js';
import type { ErrorCode } from '../core/errors.js';
import type { TraceEvent } from '../core/trace-event.js';
import type { MeshAddress } from '../parallel/socket-transport.js';
import type { MeshTransportKind } from '../parallel/transport.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { TokenPick } from '../engine/token-pick.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import type { NodeHardware } from './cluster-state.js';
import { TesseraError } from '../core/errors.js';
import { controlSchema } from './control-schema.js';

/**
 * The version of this protocol: a worker and a coordinator of different
 * versions refuse each other at the join (TESSERA_ERR_PROTOCOL_VERSION)
 * rather than misread each other's messages.
 */
// 3: steps may carry a rank-side `pick` per segment, and logits replies the picked `ids`.
// 4: a pick may carry the `next` uniform (the rank may run ahead), and stats the `ahead` counts.
// 5: kv-read / kv-rows / kv-refused: the driver reads sequences' KV rows back from the ranks (a KV export);
//    kv-write: it writes rows another replica computed into them (a KV import).
// 6: a pick may carry the `burst` uniforms (the ranks compute those steps too), and logits replies their ids.
export const PROTOCOL_VERSION = 6;

export type ControlMessage =
  // Joining (control connection): the worker reports itself, the coordinator names it.
  | { type: 'hello'; protocol: number; pid: number; hardware: NodeHardware }
  | { type: 'welcome'; protocol: number; nodeId: string; heartbeat: HeartbeatTiming }
  | { type: 'refused'; message: string }
  // The heartbeat connection, opened by the worker's heartbeat thread (heartbeat-thread.ts).
  | { type: 'beat-hello'; protocol: number; nodeId: string }
  | { type: 'beat' }
  /** Abandon the steps of `generation` now (a rank of it was lost). */
  | { type: 'abort'; generation: number }
  // Setting up a generation's mesh: prepare → listening → plan → ready (or release for a spare).
  | { type: 'prepare'; generation: number; rank: number; size: number; transport: MeshTransportKind }
  | { type: 'listening'; generation: number; address: MeshAddress }
  | {
      type: 'plan';
      generation: number;
      addresses: MeshAddress[];
      meshToken: string;
      modelPath: string;
      /** The coordinator's model identity (model-identity.ts): a rank whose file differs refuses the plan before loading a tensor. */
      modelId: string;
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
      /**
       * Shared rows (a tp 2 pair on shared memory with the native backend): how
       * far beyond its half of every matrix's rows each rank holds, chosen once
       * by the driver so both ranks of a pair agree; absent or 0: the fixed split.
       */
      rowShare?: number;
    }
  /** bytesRead: file bytes read for this plan; newBytes: what it added to what the rank held (the floor of bytesRead). */
  | { type: 'ready'; generation: number; bytesRead: number; newBytes: number; bytesHeld: number; loadMs: number }
  /** Not in this generation's plan: drop the mesh and the weights, wait as a spare. */
  | { type: 'release'; generation: number }
  /** One forward pass over the segments of several sequences (RankRunner.stepBatch), in the driver's KV pool. */
  | { type: 'step'; generation: number; id: number; pool: KvLayout; segments: StepSegment[] }
  /**
   * ids: per row of the step, the token this rank picked (segments with a
   * `pick`), else -1; absent when the step picks none. Body: [rows whose id is
   * -1, vocabSize] float32. Times are this rank's, for the step (src/parallel/step-clock.ts),
   * and a burst's later steps. burst: those steps' ids, [steps, rows] (decode-burst.ts).
   */
  | { type: 'logits'; generation: number; id: number; computeMs: number; waitMs: number; transferMs?: number; eventLoopMs?: number; ids?: number[]; burst?: number[] }
  /** The step was refused before any rank computed or sent anything (a bad block table, a bad id): it fails, the mesh goes on. */
  | { type: 'step-refused'; generation: number; id: number; segment: number; code: ErrorCode; message: string }
  /**
   * Every rank sends back its KV rows of `runs` (a KV export, src/cluster/mesh-kv-export.ts), read after
   * every step sent before this message: `kv-rows` from each rank, or `kv-refused` when a run is outside its pool.
   */
  | { type: 'kv-read'; generation: number; id: number; pool: KvLayout; runs: KvReadRun[] }
  /**
   * One rank's rows of a kv-read: its layers [layers[0], layers[1]) and KV heads [heads[0], heads[1])
   * (empty when another rank sends the same replicated heads). Body, for each run, for each layer:
   * keys [count, heads, headDim], then values, in `dtype`.
   */
  | { type: 'kv-rows'; generation: number; id: number; layers: [number, number]; heads: [number, number]; dtype: KvDtype }
  | { type: 'kv-refused'; generation: number; id: number; code: ErrorCode; message: string }
  /**
   * A KV import (a mesh decode replica, src/cluster/mesh-kv-import.ts): rows [from, from + count) of `layer`
   * and KV heads [heads[0], heads[1]) for the sequence of `blockTable`, to be written before the steps sent
   * after this message. Body: keys [count, heads, headDim], then values, in `dtype`. A rank writes the heads
   * it holds of the layers it holds; no answer (a write it cannot make breaks the generation).
   */
  | { type: 'kv-write'; generation: number; pool: KvLayout; blockTable: number[]; layer: number; from: number; count: number; heads: [number, number]; dtype: KvDtype }
  /** This rank can no longer run steps of `generation` (a peer went away, or its compute failed). */
  | { type: 'rank-failed'; generation: number; id: number; code: ErrorCode; message: string }
  /** A rank's step-time sums over its generations, sent once as it shuts down: decode steps (one token per sequence) and the rest. */
  /** ahead: steps answered from a step computed ahead (run-ahead.ts), and steps computed ahead that were not asked for. */
  | { type: 'stats'; rank: number; transport: string; decode: RankStepSums; other: RankStepSums; ahead?: { used: number; missed: number } }
  | { type: 'shutdown' }
  /** A tracing rank's spans: batches a second apart after steps, the rest as it shuts down. */
  | { type: 'trace'; events: TraceEvent[] }
  /** A clock probe (the coordinator's epoch µs) and its answer with the worker's (node-clocks.ts). */
  | { type: 'clock'; sentAt: number }
  | { type: 'clock-reply'; sentAt: number; at: number }
  | { type: 'error'; code: ErrorCode; message: string };

/** How often workers beat and how long a silent one has before it is declared lost. */
export interface HeartbeatTiming {
  intervalMs: number;
  timeoutMs: number;
}

export type RankBackend = 'auto' | 'native' | 'reference' | 'webgpu';

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
  /** rows 'last' only: the reporting rank picks this row's token and sends the id, not the logits (token-pick.ts). */
  pick?: TokenPick;
}

/** Rows [from, from + count) of one sequence, by its block table in the driver's pool. */
export interface KvReadRun {
  blockTable: number[];
  from: number;
  count: number;
}

/** A step message: the requests as plain arrays (JSON). */
export function stepMessage(generation: number, id: number, pool: KvLayout, requests: readonly StepRequest[]): ControlMessage {
  return {
    type: 'step',
    generation,
    id,
    pool: { numBlocks: pool.numBlocks, blockSize: pool.blockSize },
    segments: requests.map((request) => ({
      blockTable: Array.from(request.blockTable),
      rows: request.rows,
      ids: Array.from(request.ids),
      positions: Array.from(request.positions),
      ...(request.pick ? { pick: request.pick } : {}),
    })),
  };
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

/** A frame from a peer, checked: its header offset, its JSON, the message's schema; else TESSERA_ERR_PROTOCOL. */
export function decodeControl(frame: Uint8Array): Envelope {
  if (frame.byteLength < 4) throw new TesseraError('TESSERA_ERR_PROTOCOL', `a control frame of ${frame.byteLength} bytes is shorter than its 4-byte header length`);
  const bodyStart = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, true);
  if (bodyStart < 4 || bodyStart > frame.byteLength || bodyStart % 4 !== 0) {
    throw new TesseraError('TESSERA_ERR_PROTOCOL', `a control frame says its body starts at byte ${bodyStart} of ${frame.byteLength}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray(4, bodyStart)));
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_PROTOCOL', `a control frame's header is not JSON (${(error as Error).message.slice(0, 120)})`);
  }
  return { message: controlSchema(json, 'message'), body: frame.subarray(bodyStart) };
}
