/**
 * Embedding lookup and readRows: out [numIds, cols] = decoded rows ids of a
 * weight part (rows [rowOffset, rowOffset + rows)), one invocation per four
 * elements; ids outside the part are left for the dispatch of their part.
 * No reduction: each value is the dtype decoder's (weight-decode.ts).
 */
import type { DType } from '../../../core/dtype.js';
import { weightDecoder } from './weight-decode.js';

export function embedShader(dtype: DType): string {
  return /* wgsl */ `
struct Params {
  cols: u32,
  numIds: u32,
  rowOffset: u32,
  rows: u32,
  rowBytes: u32,
}
@group(0) @binding(0) var<storage, read> weight: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<i32>;         // [numIds]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;   // [numIds, cols]
@group(0) @binding(3) var<uniform> p: Params;
${weightDecoder(dtype)}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let quads = (p.cols + 3u) / 4u;
  let index = gid.y * 65535u * 64u + gid.x;
  if (index >= quads * p.numIds) { return; }
  let token = index / quads;
  let k = (index % quads) * 4u;
  let id = ids[token] - i32(p.rowOffset);
  if (id < 0 || u32(id) >= p.rows) { return; }
  let rb = u32(id) * p.rowBytes;
  let o = token * p.cols + k;
  if (k + 4u <= p.cols) {
    let w = weights4(rb, k);
    out[o] = w.x; out[o + 1u] = w.y; out[o + 2u] = w.z; out[o + 3u] = w.w;
  } else {
    for (var i = 0u; k + i < p.cols; i++) { out[o + i] = weightAt(rb, k + i); }
  }
}
`;
}
