/**
 * Read bandwidth probe: every invocation sums vec4<f32>s of a buffer in a
 * grid-stride loop and writes its sum (so the reads cannot be dropped). The
 * time of a dispatch over the whole buffer gives the device's read rate, the
 * limit a decode step's weight reads are measured against.
 */
export const BANDWIDTH_SHADER = /* wgsl */ `
struct Params { vectors: u32, stride: u32 }
@group(0) @binding(0) var<storage, read> data: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var sum = vec4<f32>(0.0);
  for (var i = gid.x; i < p.vectors; i += p.stride) { sum += data[i]; }
  sums[gid.x] = sum.x + sum.y + sum.z + sum.w;
}
`;
