/**
 * RoPE in place over x [numTokens, numHeads, headDim]: each rotated pair
 * (2i, 2i+1) for 'adjacent', (i, i + ropeDims/2) for 'halves') becomes
 * (x0·c − x1·s, x0·s + x1·c) with c, s from a [numTokens, ropeDims/2, 2]
 * table computed on the host in float64 (a GPU's f32 sin/cos of an angle of
 * thousands of radians is off in the fourth digit). One invocation per pair;
 * no reduction. A second tensor x2 [numTokens, numHeads2, headDim] rotating by
 * the same table (a layer's keys, beside its queries) rides in the same
 * dispatch; numHeads2 = 0 when there is none (x2 is then a stand-in).
 */
export const ROPE_SHADER = /* wgsl */ `
struct Params { numTokens: u32, numHeads: u32, headDim: u32, halfDims: u32, adjacent: u32, numHeads2: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;   // [numTokens, halfDims, 2] cos, sin
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> x2: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * 65535u * 64u + gid.x;
  let heads = p.numHeads + p.numHeads2;
  if (i >= p.numTokens * heads * p.halfDims) { return; }
  let pair = i % p.halfDims;
  let token = i / p.halfDims / heads;
  let h = (i / p.halfDims) % heads;
  let c = table[(token * p.halfDims + pair) * 2u];
  let s = table[(token * p.halfDims + pair) * 2u + 1u];
  var first = pair;
  var second = pair + p.halfDims;
  if (p.adjacent == 1u) { first = 2u * pair; second = first + 1u; }
  if (h < p.numHeads) {
    let base = (token * p.numHeads + h) * p.headDim;
    let x0 = x[base + first];
    let x1 = x[base + second];
    x[base + first] = x0 * c - x1 * s;
    x[base + second] = x0 * s + x1 * c;
  } else {
    let base = (token * p.numHeads2 + h - p.numHeads) * p.headDim;
    let x0 = x2[base + first];
    let x1 = x2[base + second];
    x2[base + first] = x0 * c - x1 * s;
    x2[base + second] = x0 * s + x1 * c;
  }
}
`;
