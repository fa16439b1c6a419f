/**
 * out [N, M] = x [N, K] · Wᵀ, W [M, K] in its file dtype: workgroups of
 * THREADS invocations, LANES of them per row of W (THREADS / LANES rows a
 * workgroup), each workgroup over a group of TOKENS tokens. Decode uses
 * TOKENS = 1, batches TOKENS = 8; LANES is the device's (fewer on a CPU
 * adapter, where barriers are dear). None of these changes a bit of a result.
 *
 * Reduction order (the canonical tree of src/backend/backend.ts, exactly):
 * - A leaf is `leafSize` consecutive elements (32; 256 for Q4_K/Q6_K; the
 *   last may be short). Its sum starts at 0 and adds the elements in order,
 *   four at a time, each as one fma(w, x, sum) in f32.
 * - Leaves combine in the recursive-halving tree. That tree is laid out as a
 *   perfect binary tree over P = 2^ceil(log2 leaves) slots (the `slots`
 *   table maps a slot to its leaf or to -1, see slot-table.ts), where an
 *   empty slot holds -0.0 (x + -0.0 == x for every x, so it passes its
 *   sibling through unchanged).
 * - Lane i of a row owns the S = max(1, P / LANES) consecutive slots
 *   [i·S, (i+1)·S), a whole subtree, which it folds pairwise with a binary
 *   counter (level j holds the sum of the last 2^j slots); the LANES subtree
 *   sums (-0.0 past P) then fold pairwise in workgroup memory.
 * Nothing depends on N, the token group, LANES or the part of W a dispatch covers.
 */
import type { DType } from '../../../core/dtype.js';
import { weightDecoder } from './weight-decode.js';

export const MATMUL_THREADS = 128;
/** Binary-counter levels a lane keeps: S ≤ 2^7. */
export const MATMUL_MAX_SLOTS_PER_LANE = 128;

/** WGSL of the matmul for one dtype, token group size and lanes per row. */
export function matmulShader(dtype: DType, tokens: number, lanes: number): string {
  const T = tokens;
  const levels = [0, 1, 2, 3, 4, 5, 6];
  // The binary counter, unrolled: after slot j, level l holds a subtree sum when bit l of j is 0.
  const fold = levels
    .map((l) => `if ((j & ${1 << l}u) == 0u) { s${l} = v; continue; }\n    for (var t = 0u; t < ${T}u; t++) { v[t] = s${l}[t] + v[t]; }`)
    .join('\n    ');
  const pick = levels.map((l) => `case ${1 << l}u: { result = s${l}; }`).join('\n    ');
  return /* wgsl */ `
struct Params {
  K: u32,            // columns of W and of x
  rows: u32,         // rows of W in this part
  N: u32,            // tokens
  outStride: u32,    // M: columns of out
  rowOffset: u32,    // first row of this part in W (column of out)
  rowBytes: u32,     // bytes of one row of W
  leafSize: u32,
  numSlots: u32,     // P
  slotsPerThread: u32, // S
}
@group(0) @binding(0) var<storage, read> weight: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [N, K]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;    // [N, outStride]
@group(0) @binding(3) var<storage, read> slots: array<i32>;        // [P] leaf of each slot, -1 empty
@group(0) @binding(4) var<uniform> p: Params;
${weightDecoder(dtype)}
const THREADS = ${MATMUL_THREADS}u;
const LANES = ${lanes}u;
var<workgroup> partial: array<f32, ${T * MATMUL_THREADS}>; // [TOKENS, THREADS]

// Sum of leaf \`leaf\` of the row at byte rb for each token of the group (-0.0 for an empty slot).
fn leafSums(rb: u32, leaf: i32, token0: u32) -> array<f32, ${T}> {
  var v: array<f32, ${T}>;
  if (leaf < 0) {
    for (var t = 0u; t < ${T}u; t++) { v[t] = bitcast<f32>(0x80000000u); }
    return v;
  }
  let k0 = u32(leaf) * p.leafSize;
  let k1 = min(k0 + p.leafSize, p.K);
  var k = k0;
  for (; k + 4u <= k1; k += 4u) {
    let w = weights4(rb, k);
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) {
        let xi = (token0 + t) * p.K + k;
        var s = v[t];
        s = fma(w.x, x[xi], s);
        s = fma(w.y, x[xi + 1u], s);
        s = fma(w.z, x[xi + 2u], s);
        s = fma(w.w, x[xi + 3u], s);
        v[t] = s;
      }
    }
  }
  for (; k < k1; k++) {
    let w = weightAt(rb, k);
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) { v[t] = fma(w, x[(token0 + t) * p.K + k], v[t]); }
    }
  }
  return v;
}

@compute @workgroup_size(${MATMUL_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let lane = tid % LANES;
  let row = (wg.y * 32768u + wg.x) * (THREADS / LANES) + tid / LANES;
  let token0 = wg.z * ${T}u;
  let rb = row * p.rowBytes;
  let S = p.slotsPerThread;
  ${levels.map((l) => `var s${l}: array<f32, ${T}>;`).join(' ')}
  var result: array<f32, ${T}>;
  for (var j = 0u; j < S; j++) {
    let slot = lane * S + j;
    var leaf = -1;
    if (slot < p.numSlots && row < p.rows) { leaf = slots[slot]; }
    var v = leafSums(rb, leaf, token0);
    ${fold}
    result = v; // S = 128: the whole subtree
  }
  switch (S) {
    ${pick}
    default: {}
  }
  for (var t = 0u; t < ${T}u; t++) { partial[t * THREADS + tid] = result[t]; }
  for (var stride = 1u; stride < LANES; stride *= 2u) {
    workgroupBarrier();
    if ((lane & (2u * stride - 1u)) == 0u) {
      for (var t = 0u; t < ${T}u; t++) {
        partial[t * THREADS + tid] = partial[t * THREADS + tid] + partial[t * THREADS + tid + stride];
      }
    }
  }
  workgroupBarrier();
  if (lane == 0u && row < p.rows) {
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) { out[(token0 + t) * p.outStride + p.rowOffset + row] = partial[t * THREADS + tid]; }
    }
  }
}
`;
}
