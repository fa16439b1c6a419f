/**
 * Causal attention over paged KV pools: one workgroup of 64 invocations per
 * (query row, head). Row r attends to positions 0..rowInfo[r].position of its
 * sequence, whose logical block b lives in physical block
 * blockTables[rowInfo[r].table + b]; a row in no segment (position -1) gets
 * zeros. GQA: head h reads KV head h / (numHeads / numKvHeads).
 *
 * Order, fixed per row whatever the batch or chunking: positions go in
 * chunks of 64 from position 0. In a chunk, invocation j scores position
 * c0 + j (q·k summed over d in order, one fma each, times scale); the
 * chunk's max and its sum of exp(score − m) fold pairwise in workgroup
 * memory; then the online-softmax update (m, l, and each output dim:
 * acc·exp(m_old − m) then the chunk's weights · values added position by
 * position in order). The result is acc / l.
 */
import type { KvDtype } from '../../../core/kv-dtype.js';
import { HALF_CONVERSIONS } from './wgsl-common.js';

export const ATTENTION_MAX_HEAD_DIM = 256;

export function attentionShader(dtype: KvDtype): string {
  const read = dtype === 'f32'
    ? 'fn kvAt(pool: ptr<storage, array<u32>, read>, e: u32) -> f32 { return bitcast<f32>((*pool)[e]); }'
    : 'fn kvAt(pool: ptr<storage, array<u32>, read>, e: u32) -> f32 { return halfToF32((*pool)[e >> 1u] >> ((e & 1u) * 16u)); }';
  return /* wgsl */ `
struct Params { numHeads: u32, numKvHeads: u32, headDim: u32, blockSize: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> query: array<f32>;         // [numTokens, numHeads, headDim]
@group(0) @binding(1) var<storage, read> keyPool: array<u32>;       // [blocks, blockSize, numKvHeads, headDim]
@group(0) @binding(2) var<storage, read> valuePool: array<u32>;
@group(0) @binding(3) var<storage, read> rowInfo: array<i32>;       // [numTokens, 2] position, table offset
@group(0) @binding(4) var<storage, read> blockTables: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;     // [numTokens, numHeads, headDim]
@group(0) @binding(6) var<uniform> p: Params;
${HALF_CONVERSIONS}
${read}
var<workgroup> q: array<f32, ${ATTENTION_MAX_HEAD_DIM}>;
var<workgroup> scores: array<f32, 64>;
var<workgroup> folded: array<f32, 64>;
var<workgroup> slots: array<u32, 64>;
var<workgroup> rowPosition: i32;

fn foldMax(tid: u32) -> f32 {
  for (var stride = 1u; stride < 64u; stride *= 2u) {
    workgroupBarrier();
    if ((tid & (2u * stride - 1u)) == 0u) { folded[tid] = max(folded[tid], folded[tid + stride]); }
  }
  workgroupBarrier();
  let result = folded[0];
  workgroupBarrier();
  return result;
}

fn foldSum(tid: u32) -> f32 {
  for (var stride = 1u; stride < 64u; stride *= 2u) {
    workgroupBarrier();
    if ((tid & (2u * stride - 1u)) == 0u) { folded[tid] = folded[tid] + folded[tid + stride]; }
  }
  workgroupBarrier();
  let result = folded[0];
  workgroupBarrier();
  return result;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let head = wg.x;
  let row = wg.y;
  let D = p.headDim;
  let outBase = (row * p.numHeads + head) * D;
  if (tid == 0u) { rowPosition = rowInfo[2u * row]; }
  // Uniform across the workgroup (barriers below depend on it).
  let position = workgroupUniformLoad(&rowPosition);
  if (position < 0) {
    for (var d = tid; d < D; d += 64u) { out[outBase + d] = 0.0; }
    return;
  }
  let table = u32(rowInfo[2u * row + 1u]);
  let kvHead = head / (p.numHeads / p.numKvHeads);
  for (var d = tid; d < D; d += 64u) { q[d] = query[outBase + d]; }
  workgroupBarrier();
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // dims tid, tid + 64, ...
  var m = -3.4028234663852886e38;  // -FLT_MAX: below every score (WGSL constants cannot be -inf)
  var l = 0.0;
  let last = u32(position);
  for (var c0 = 0u; c0 <= last; c0 += 64u) {
    let pos = c0 + tid;
    var score = -3.4028234663852886e38;
    if (pos <= last) {
      let physical = u32(blockTables[table + pos / p.blockSize]);
      let slot = physical * p.blockSize + pos % p.blockSize;
      slots[tid] = slot;
      let kBase = (slot * p.numKvHeads + kvHead) * D;
      var s = 0.0;
      for (var d = 0u; d < D; d++) { s = fma(q[d], kvAt(&keyPool, kBase + d), s); }
      score = s * p.scale;
    }
    folded[tid] = score;
    let chunkMax = foldMax(tid);
    let mNew = max(m, chunkMax);
    var weight = 0.0;
    if (pos <= last) { weight = exp(score - mNew); }
    scores[tid] = weight;
    folded[tid] = weight;
    let chunkSum = foldSum(tid);
    let correction = exp(m - mNew);
    l = l * correction + chunkSum;
    let count = min(64u, last + 1u - c0);
    for (var i = 0u; i < 4u; i++) {
      let d = tid + 64u * i;
      if (d < D) {
        var a = acc[i] * correction;
        for (var j = 0u; j < count; j++) {
          a = fma(scores[j], kvAt(&valuePool, (slots[j] * p.numKvHeads + kvHead) * D + d), a);
        }
        acc[i] = a;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let d = tid + 64u * i;
    if (d < D) { out[outBase + d] = acc[i] / l; }
  }
}
`;
}
