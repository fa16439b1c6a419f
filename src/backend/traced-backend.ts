/**
 * A Backend that records one complete ('X') Chrome trace span per op call —
 * matmul, attention, rmsNorm, … — with what the op touched (tokens, weight
 * dtype and shape, bytes of weight or KV read), into a rank's trace beside
 * its step and message spans. It wraps any backend and changes no result:
 * every call goes to the wrapped backend with the same arguments and `this`.
 *
 * It is a Proxy rather than a class so that every method of the wrapped
 * backend is forwarded, including ones this file does not know (ops added to
 * Backend later, extras of one implementation) — those get a span with
 * arguments described generically — and so that optional methods
 * (loadWeightFromFile) stay absent where the wrapped backend lacks them,
 * since callers test for them. To describe a new op better, add it to
 * DESCRIBE below; the compiler checks its parameters against Backend.
 *
 * Untraced runs use the plain backend, so tracing costs nothing when off.
 */
import type { AttentionArgs, AttentionBatchArgs, Backend, KvPool, KvSegment, RopeArgs, Weight } from './backend.js';
import { byteSize, type DType } from '../core/dtype.js';
import { TRACE_THREADS, epochMicros, type TraceArgs, type TraceEvent } from '../core/trace-event.js';
import { kvDtypeBytes } from '../core/kv-dtype.js';

/** Where spans go: a rank's event list, and the process (rank) and track they are drawn on. */
export interface TraceTrack {
  readonly events: TraceEvent[];
  readonly pid: number;
  /** Default: the compute track, where the rank's step spans are, so ops nest under steps. */
  readonly tid?: number;
}

/** The names of Backend's methods, optional ones included. */
type Op = { [K in keyof Backend]-?: NonNullable<Backend[K]> extends (...args: never[]) => unknown ? K : never }[keyof Backend];

/** Span arguments of an op, from its call arguments (after the call; in-place ops keep their shapes). */
type Describe<K extends Op> = (...args: Parameters<NonNullable<Backend[K]>>) => TraceArgs;

const DESCRIBE: { [K in Op]?: Describe<K> } = {
  loadWeight: (dtype, shape, bytes) => ({ dtype, shape: shapeText(shape), bytes: bytes.byteLength }),
  loadWeightFromFile: (path, byteOffset, dtype, shape) => ({ dtype, shape: shapeText(shape), bytes: bytesOf(dtype, shape), path, byteOffset }),
  readRows: (weight, rowStart, rowEnd) => ({ rows: rowEnd - rowStart, dtype: weight.dtype, shape: shapeText(weight.shape) }),
  matmul: (_x, weight, numTokens) => ({ numTokens, ...weightArgs(weight), flops: 2 * numTokens * elementsOf(weight.shape) }),
  matmulMany: (_x, weights, numTokens) => ({
    numTokens,
    shapes: weights.map((w) => shapeText(w.shape)).join(' + '),
    dtype: weights.map((w) => w.dtype).join(','),
    weightBytes: weights.reduce((sum, w) => sum + bytesOf(w.dtype, w.shape), 0),
    flops: weights.reduce((sum, w) => sum + 2 * numTokens * elementsOf(w.shape), 0),
  }),
  // Only the looked-up rows of the table are read.
  embed: (ids, table) => ({ numTokens: ids.length, dtype: table.dtype, shape: shapeText(table.shape), weightBytes: ids.length * bytesOf(table.dtype, table.shape.slice(1)) }),
  rmsNorm: (x, weight, numRows) => ({ rows: numRows, dim: x.length / Math.max(1, numRows), weightBytes: bytesOf(weight.dtype, weight.shape) }),
  addBias: (x, bias, numRows) => ({ rows: numRows, dim: x.length / Math.max(1, numRows), weightBytes: bytesOf(bias.dtype, bias.shape) }),
  rope: (args) => ropeArgs(args),
  // Bytes stored in the cache (half of the values' bytes for an f16 pool).
  writeKv: (pool, _blockTable, positions, values) => ({ numTokens: positions.length, ...poolArgs(pool), bytes: values.length * kvDtypeBytes(pool.dtype) }),
  attention: (args) => attentionArgs(args),
  // Keys and values of every segment's rows.
  writeKvBatch: ({ keyCache, segments }) => ({
    numTokens: rowsOf(segments),
    segments: segments.length,
    ...poolArgs(keyCache),
    bytes: 2 * rowsOf(segments) * keyCache.numKvHeads * keyCache.headDim * kvDtypeBytes(keyCache.dtype),
  }),
  attentionBatch: (args) => attentionBatchArgs(args),
  siluMul: (gate) => ({ elements: gate.length }),
  addInPlace: (a) => ({ elements: a.length }),
};

/** `inner`, with a span per op call pushed onto `track.events`. */
export function tracedBackend<B extends Backend>(inner: B, track: TraceTrack): B {
  // One wrapper per method, made on first use, so a method read twice is the same function.
  const wrappers = new Map<string, unknown>();
  return new Proxy(inner, {
    get(target, property) {
      // `target` as receiver: getters and #private fields see the real backend.
      const value: unknown = Reflect.get(target, property, target);
      // Only the backend's own methods are ops; Object's (toString, constructor, …) pass through.
      if (typeof value !== 'function' || typeof property !== 'string' || property in Object.prototype) return value;
      let wrapper = wrappers.get(property);
      if (wrapper === undefined) {
        wrapper = spanned(property, value as (...args: unknown[]) => unknown, target, track);
        wrappers.set(property, wrapper);
      }
      return wrapper;
    },
  });
}

/** `method` called on `target`, timed; calls it makes on its own backend are inside its span, not spans of their own. */
function spanned(op: string, method: (...args: unknown[]) => unknown, target: object, track: TraceTrack): (...args: unknown[]) => unknown {
  const span: OpSpan = { op, describe: describerOf(op), track, tid: track.tid ?? TRACE_THREADS.compute };
  return (...args: unknown[]): unknown => {
    const started = epochMicros();
    let result: unknown;
    try {
      result = Reflect.apply(method, target, args);
    } catch (error) {
      record(span, started, args);
      throw error;
    }
    // An asynchronous op (a device backend) spans until it settles.
    if (result instanceof Promise) return result.finally(() => record(span, started, args));
    record(span, started, args);
    return result;
  };
}

/** What every span of one method shares. */
interface OpSpan {
  op: string;
  describe: (...args: unknown[]) => TraceArgs;
  track: TraceTrack;
  tid: number;
}

function record(span: OpSpan, started: number, args: unknown[]): void {
  const dur = epochMicros() - started;
  span.track.events.push({ name: span.op, cat: 'backend', ph: 'X', ts: started, dur, pid: span.track.pid, tid: span.tid, args: safely(span.describe, args) });
}

function describerOf(op: string): (...args: unknown[]) => TraceArgs {
  // The table is keyed by op name; its parameter types were checked where it is written.
  const known = Object.hasOwn(DESCRIBE, op) ? (DESCRIBE as Record<string, unknown>)[op] : undefined;
  return typeof known === 'function' ? (known as (...args: unknown[]) => TraceArgs) : genericArgs;
}

/** A failing op may have had arguments its describer cannot read; the op's own error is what matters. */
function safely(describe: (...args: unknown[]) => TraceArgs, args: unknown[]): TraceArgs {
  try {
    return describe(...args);
  } catch {
    return {};
  }
}

function weightArgs(weight: Weight): TraceArgs {
  return { dtype: weight.dtype, shape: shapeText(weight.shape), weightBytes: bytesOf(weight.dtype, weight.shape) };
}

function poolArgs(pool: KvPool): TraceArgs {
  return { numKvHeads: pool.numKvHeads, headDim: pool.headDim, blockSize: pool.blockSize, dtype: pool.dtype };
}

function ropeArgs(args: RopeArgs): TraceArgs {
  return { numTokens: args.positions.length, numHeads: args.numHeads, headDim: args.headDim, ropeDims: args.ropeDims, style: args.style };
}

/** The queries together read keys and values up to the furthest position. */
function furthestPosition(positions: Int32Array): number {
  return positions.reduce((furthest, position) => Math.max(furthest, position + 1), 0);
}

function rowsOf(segments: readonly KvSegment[]): number {
  return segments.reduce((rows, segment) => rows + segment.positions.length, 0);
}

function attentionBatchArgs(args: AttentionBatchArgs): TraceArgs {
  // Each segment reads its own sequence's keys and values.
  const kvPositions = args.segments.reduce((sum, segment) => sum + furthestPosition(segment.positions), 0);
  return {
    numTokens: rowsOf(args.segments),
    segments: args.segments.length,
    numHeads: args.numHeads,
    numKvHeads: args.numKvHeads,
    headDim: args.headDim,
    kvPositions,
    kvBytes: 2 * kvPositions * args.numKvHeads * args.headDim * kvDtypeBytes(args.keyCache.dtype),
  };
}

function attentionArgs(args: AttentionArgs): TraceArgs {
  const kvPositions = furthestPosition(args.positions);
  return {
    numTokens: args.positions.length,
    numHeads: args.numHeads,
    numKvHeads: args.numKvHeads,
    headDim: args.headDim,
    kvPositions,
    kvBytes: 2 * kvPositions * args.numKvHeads * args.headDim * kvDtypeBytes(args.keyCache.dtype),
  };
}

/**
 * Arguments of an op this file does not know: numbers and strings as they
 * are, arrays and typed arrays by size, a weight by dtype and shape, and an
 * arguments object (like AttentionArgs) by its numeric fields.
 */
function genericArgs(...args: unknown[]): TraceArgs {
  const out: TraceArgs = {};
  args.forEach((value, index) => {
    const key = `arg${index}`;
    if (typeof value === 'number' || typeof value === 'string') out[key] = value;
    else if (ArrayBuffer.isView(value)) out[`${key}Bytes`] = value.byteLength;
    else if (Array.isArray(value)) out[`${key}Length`] = value.length;
    else if (isWeight(value)) Object.assign(out, weightArgs(value));
    else if (typeof value === 'object' && value !== null) Object.assign(out, numericFields(value));
  });
  return out;
}

function numericFields(value: object): TraceArgs {
  const out: TraceArgs = {};
  for (const [field, inner] of Object.entries(value)) {
    if (typeof inner === 'number') out[field] = inner;
    else if (field === 'positions' && inner instanceof Int32Array) out.numTokens = inner.length;
  }
  return out;
}

function isWeight(value: unknown): value is Weight {
  return typeof value === 'object' && value !== null && 'dtype' in value && 'shape' in value && Array.isArray((value as Weight).shape);
}

function elementsOf(shape: readonly number[]): number {
  return shape.reduce((product, size) => product * size, 1);
}

function bytesOf(dtype: DType, shape: readonly number[]): number {
  return byteSize(dtype, elementsOf(shape));
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
