/**
 * out [N, M] = x [N, K] · Wᵀ, W [M, K] in its file dtype: workgroups of
 * THREADS invocations, LANES of them per row of W (THREADS / LANES rows a
 * workgroup), each workgroup over a group of TOKENS tokens. Decode uses
 * TOKENS = 1, batches TOKENS = 8; LANES is the device's subgroup size (32 on
 * NVIDIA, 8 on lavapipe). None of these changes a bit of a result.
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
 * - The row's lanes take the slots in rounds of LANES: in round r, lane i
 *   sums the leaf of slot r·LANES + i (neighbouring lanes read neighbouring
 *   blocks: coalesced). A round's LANES sums, a whole aligned subtree, fold
 *   pairwise by a butterfly (lane i adds lane i xor 1, then xor 2, ...;
 *   a + b == b + a in IEEE arithmetic, so every lane holds the same sum),
 *   through subgroup shuffles where the adapter has them and workgroup
 *   memory where not. Round sums then fold pairwise with a binary counter
 *   (level j holds the sum of the last 2^j rounds).
 * Nothing depends on N, the token group, LANES or the part of W a dispatch covers.
 *
 * The gated variant runs two weights of one shape over the same x (the
 * feed-forward's gate and up) and writes silu(gate) · up, each product
 * reduced exactly as above and combined as the silu-mul kernel does: the bits
 * of matmul, matmul, siluMul in one dispatch.
 */
import type { DType } from '../../../core/dtype.js';
import { namedWeightDecoder, weightDecoder } from './weight-decode.js';

export const MATMUL_THREADS = 128;
/** Binary-counter levels over rounds: at most 2^7 rounds. */
export const MATMUL_MAX_ROUNDS = 128;

export interface MatmulVariant {
  dtype: DType;
  tokens: number;
  /** Invocations per row: the subgroup size with shuffles, else any power of two ≤ THREADS. */
  lanes: number;
  shuffles: boolean;
  /** silu(x·gateᵀ) · (x·upᵀ), up in binding 6. */
  gated?: boolean;
}

/** WGSL of one matmul variant. */
export function matmulShader({ dtype, tokens: T, lanes, shuffles, gated = false }: MatmulVariant): string {
  const levels = [0, 1, 2, 3, 4, 5, 6];
  const streams = gated ? ['', 'B'] : [''];
  // The binary counter of stream X, unrolled: after round r, level l holds a subtree sum when bit l of r is 0.
  const fold = (x: string) =>
    levels
      .map((l) => `if ((r & ${1 << l}u) == 0u) { s${x}${l} = v${x}; continue; }\n    for (var t = 0u; t < ${T}u; t++) { v${x}[t] = s${x}${l}[t] + v${x}[t]; }`)
      .join('\n    ');
  const pick = (x: string) => levels.map((l) => `case ${1 << l}u: { result${x} = s${x}${l}; }`).join('\n    ');
  const butterfly = shuffles
    ? /* wgsl */ `
fn butterfly(v: f32, tid: u32) -> f32 {
  var s = v;
  for (var m = 1u; m < LANES; m *= 2u) { s = s + subgroupShuffleXor(s, m); }
  return s;
}`
    : /* wgsl */ `
var<workgroup> exchange: array<f32, ${MATMUL_THREADS}>;
fn butterfly(v: f32, tid: u32) -> f32 {
  var s = v;
  for (var m = 1u; m < LANES; m *= 2u) {
    exchange[tid] = s;
    workgroupBarrier();
    let other = exchange[tid ^ m];
    workgroupBarrier();
    s = s + other;
  }
  return s;
}`;
  const leafSums = (x: string) => /* wgsl */ `
// Sum of leaf \`leaf\` of the row at byte rb for each token of the group (-0.0 for an empty slot).
fn leafSums${x}(rb: u32, leaf: i32, token0: u32) -> array<f32, ${T}> {
  var v: array<f32, ${T}>;
  if (leaf < 0) {
    for (var t = 0u; t < ${T}u; t++) { v[t] = bitcast<f32>(0x80000000u); }
    return v;
  }
  let k0 = u32(leaf) * p.leafSize;
  let k1 = min(k0 + p.leafSize, p.K);
  var k = k0;
  // Rows of x start on a vec4 when K is a multiple of 4: x is then read 16 bytes at a time (the same values).
  let wide = (p.K & 3u) == 0u;
  for (; k + 4u <= k1; k += 4u) {
    let w = weights4${x}(rb, k);
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) {
        let xi = (token0 + t) * p.K + k;
        var xs: vec4<f32>;
        if (wide) { xs = x4[xi >> 2u]; } else { xs = vec4<f32>(x[xi], x[xi + 1u], x[xi + 2u], x[xi + 3u]); }
        var s = v[t];
        s = fma(w.x, xs.x, s);
        s = fma(w.y, xs.y, s);
        s = fma(w.z, xs.z, s);
        s = fma(w.w, xs.w, s);
        v[t] = s;
      }
    }
  }
  for (; k < k1; k++) {
    let w = weightAt${x}(rb, k);
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) { v[t] = fma(w, x[(token0 + t) * p.K + k], v[t]); }
    }
  }
  return v;
}`;
  const store = gated
    ? /* wgsl */ `let g = result[t];
        let silu = g / (1.0 + exp(-g));
        out[o] = silu * resultB[t];`
    : /* wgsl */ `if (p.accumulate == 1u) { out[o] = out[o] + result[t]; } else { out[o] = result[t]; }`;
  return /* wgsl */ `${shuffles ? 'enable subgroups;' : ''}
struct Params {
  K: u32,            // columns of W and of x
  rows: u32,         // rows of W in this part
  N: u32,            // tokens
  outStride: u32,    // M: columns of out
  rowOffset: u32,    // first row of this part in W (column of out)
  rowBytes: u32,     // bytes of one row of W
  leafSize: u32,
  numSlots: u32,     // P
  rounds: u32,       // max(1, P / LANES)
  accumulate: u32,   // 1: out += x·Wᵀ (the residual add, fused)
}
@group(0) @binding(0) var<storage, read> weight: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;            // [N, K]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;    // [N, outStride]
@group(0) @binding(3) var<storage, read> slots: array<i32>;        // [P] leaf of each slot, -1 empty
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;     // x again, as vec4s
${gated ? '@group(0) @binding(6) var<storage, read> weightUp: array<u32>;  // gated: the up weight, shaped as weight' : ''}
${weightDecoder(dtype)}
${gated ? namedWeightDecoder(dtype, 'weightUp', 'B') : ''}
const THREADS = ${MATMUL_THREADS}u;
const LANES = ${lanes}u;
${butterfly}
${streams.map(leafSums).join('\n')}

@compute @workgroup_size(${MATMUL_THREADS})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let lane = tid % LANES;
  let row = (wg.y * 32768u + wg.x) * (THREADS / LANES) + tid / LANES;
  let token0 = wg.z * ${T}u;
  let rb = min(row, p.rows - 1u) * p.rowBytes;
  ${streams.map((x) => levels.map((l) => `var s${x}${l}: array<f32, ${T}>;`).join(' ')).join('\n  ')}
  ${streams.map((x) => `var result${x}: array<f32, ${T}>;`).join(' ')}
  for (var r = 0u; r < p.rounds; r++) {
    let slot = r * LANES + lane;
    var leaf = -1;
    if (slot < p.numSlots && row < p.rows) { leaf = slots[slot]; }
    ${streams.map((x) => `var v${x} = leafSums${x}(rb, leaf, token0);
    for (var t = 0u; t < ${T}u; t++) { v${x}[t] = butterfly(v${x}[t], tid); }`).join('\n    ')}
    ${streams.length === 1 ? `${fold('')}\n    result = v; // ${MATMUL_MAX_ROUNDS} rounds: the whole tree` : `${streams.map((x) => `for (var once = 0u; once < 1u; once++) {\n    ${fold(x)}\n    result${x} = v${x};\n    }`).join('\n    ')}`}
  }
  ${streams.map((x) => `switch (p.rounds) {\n    ${pick(x)}\n    default: {}\n  }`).join('\n  ')}
  if (lane == 0u && row < p.rows) {
    for (var t = 0u; t < ${T}u; t++) {
      if (token0 + t < p.N) {
        let o = (token0 + t) * p.outStride + p.rowOffset + row;
        ${store}
      }
    }
  }
}
`;
}
