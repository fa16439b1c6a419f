/**
 * Elementwise ops, one invocation per element (no reductions):
 * - silu-mul: out = (g / (1 + exp(-g))) · u
 * - add: a += b
 * - bias: x[r, i] += bias[i]
 * - gather: out[i, :] = x[rows[i], :] (the rows of a batch that want logits)
 * Indices run over gid.x + gid.y · 65535 · 64, so large tensors need no
 * second kind of dispatch.
 */
const INDEX = `let i = gid.y * 65535u * 64u + gid.x;`;

export const SILU_MUL_SHADER = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  let g = gate[i];
  let silu = g / (1.0 + exp(-g));
  out[i] = silu * up[i];
}
`;

export const ADD_SHADER = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  a[i] = a[i] + b[i];
}
`;

export const BIAS_SHADER = /* wgsl */ `
struct Params { n: u32, dim: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> bias: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  x[i] = x[i] + bias[i % p.dim];
}
`;

export const GATHER_SHADER = /* wgsl */ `
struct Params { n: u32, rowSize: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> rows: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  let r = i / p.rowSize;
  out[i] = x[u32(rows[r]) * p.rowSize + i % p.rowSize];
}
`;

export const COPY_SHADER = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  dst[i] = src[i];
}
`;

/** silu-mul into gate itself (a buffer cannot be bound twice when one binding writes). */
export const SILU_MUL_IN_PLACE_SHADER = /* wgsl */ `
struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> gate: array<f32>;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  ${INDEX}
  if (i >= p.n) { return; }
  let g = gate[i];
  let silu = g / (1.0 + exp(-g));
  gate[i] = silu * up[i];
}
`;
