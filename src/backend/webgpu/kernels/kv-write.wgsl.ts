/**
 * Writes a batch's keys and values [numTokens, rowSize] into one layer's
 * pools at each row's slot (physical block · blockSize + position % blockSize,
 * or -1 for a row in no segment). Pools are array<u32>: f32 bits, or two
 * IEEE halves a word (low half first), rounded to nearest even exactly as
 * src/core/half.ts. Halves are stored with atomicAnd/atomicOr on their own
 * 16 bits, so two rows whose halves share a word (odd rowSize) cannot lose
 * each other's write. One invocation per element; no reduction. writeKv of
 * one pool (keys only) binds a stand-in for the value pool and skips it.
 */
import { HALF_CONVERSIONS } from './wgsl-common.js';

const HEADER = /* wgsl */ `
struct Params { numTokens: u32, rowSize: u32, both: u32 }  // both = 0: keys only (valuePool is a stand-in)
@group(0) @binding(2) var<storage, read> keys: array<f32>;      // [numTokens, rowSize]
@group(0) @binding(3) var<storage, read> values: array<f32>;    // [numTokens, rowSize]
@group(0) @binding(4) var<storage, read> rowSlot: array<i32>;   // [numTokens]
@group(0) @binding(5) var<uniform> p: Params;
`;

const INDEX = /* wgsl */ `
  let i = gid.y * 65535u * 64u + gid.x;
  if (i >= p.numTokens * p.rowSize) { return; }
  let row = i / p.rowSize;
  let slot = rowSlot[row];
  if (slot < 0) { return; }
  let e = u32(slot) * p.rowSize + i % p.rowSize;
`;

export const KV_WRITE_F32_SHADER = /* wgsl */ `${HEADER}
@group(0) @binding(0) var<storage, read_write> keyPool: array<u32>;
@group(0) @binding(1) var<storage, read_write> valuePool: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  keyPool[e] = bitcast<u32>(keys[i]);
  if (p.both == 1u) { valuePool[e] = bitcast<u32>(values[i]); }
}
`;

export const KV_WRITE_F16_SHADER = /* wgsl */ `${HEADER}
@group(0) @binding(0) var<storage, read_write> keyPool: array<atomic<u32>>;
@group(0) @binding(1) var<storage, read_write> valuePool: array<atomic<u32>>;
${HALF_CONVERSIONS}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  let shift = (e & 1u) * 16u;
  let keep = ~(0xffffu << shift);
  atomicAnd(&keyPool[e >> 1u], keep);
  atomicOr(&keyPool[e >> 1u], f32ToHalf(keys[i]) << shift);
  if (p.both == 1u) {
    atomicAnd(&valuePool[e >> 1u], keep);
    atomicOr(&valuePool[e >> 1u], f32ToHalf(values[i]) << shift);
  }
}
`;
