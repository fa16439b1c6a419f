/**
 * RMSNorm: out[r, i] = (x[r, i] · scale_r) · w[i], scale_r = 1 / sqrt(mean_r + eps)
 * with mean_r = Σ x² / dim. One workgroup of 64 invocations per row.
 *
 * Reduction order: invocation i sums x[r, j]² for j = i, i + 64, ... in
 * order (each square rounded to f32, then added); the 64 partial sums fold
 * pairwise in workgroup memory (0+1, 2+3, ..., then pairs of pairs). Fixed
 * for a row whatever the number of rows.
 */
export const RMS_NORM_SHADER = /* wgsl */ `
struct Params { dim: u32, rows: u32, eps: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;           // [rows, dim]
@group(0) @binding(1) var<storage, read> w: array<f32>;           // [dim]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;   // [rows, dim]
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> partial: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  let row = wg.y * 32768u + wg.x;
  if (row >= p.rows) { return; }
  let base = row * p.dim;
  var sum = 0.0;
  for (var j = tid; j < p.dim; j += 64u) {
    let v = x[base + j];
    let square = v * v;
    sum = sum + square;
  }
  partial[tid] = sum;
  for (var stride = 1u; stride < 64u; stride *= 2u) {
    workgroupBarrier();
    if ((tid & (2u * stride - 1u)) == 0u) { partial[tid] = partial[tid] + partial[tid + stride]; }
  }
  workgroupBarrier();
  let mean = partial[0] / f32(p.dim);
  let scale = 1.0 / sqrt(mean + p.eps);
  for (var j = tid; j < p.dim; j += 64u) {
    let scaled = x[base + j] * scale;
    out[base + j] = scaled * w[j];
  }
}
`;
