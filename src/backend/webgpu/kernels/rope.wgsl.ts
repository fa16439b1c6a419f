/**
 * RoPE in place over x [numTokens, numHeads, headDim]: each rotated pair
 * (2i, 2i+1) for 'adjacent', (i, i + ropeDims/2) for 'halves') becomes
 * (x0·c − x1·s, x0·s + x1·c) with c, s from a [numTokens, ropeDims/2, 2]
 * table computed on the host in float64 (a GPU's f32 sin/cos of an angle of
 * thousands of radians is off in the fourth digit). One invocation per pair;
 * no reduction.
 */
export const ROPE_SHADER = /* wgsl */ `
struct Params { numTokens: u32, numHeads: u32, headDim: u32, halfDims: u32, adjacent: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;   // [numTokens, halfDims, 2] cos, sin
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * 65535u * 64u + gid.x;
  if (i >= p.numTokens * p.numHeads * p.halfDims) { return; }
  let pair = i % p.halfDims;
  let head = i / p.halfDims;           // token · numHeads + head
  let token = head / p.numHeads;
  let base = head * p.headDim;
  var a = base + pair;
  var b = base + pair + p.halfDims;
  if (p.adjacent == 1u) { a = base + 2u * pair; b = a + 1u; }
  let c = table[(token * p.halfDims + pair) * 2u];
  let s = table[(token * p.halfDims + pair) * 2u + 1u];
  let x0 = x[a];
  let x1 = x[b];
  x[a] = x0 * c - x1 * s;
  x[b] = x0 * s + x1 * c;
}
`;
