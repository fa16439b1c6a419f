/**
 * Elementwise ops, one invocation per element (no reductions):
 * - silu-mul: out = (g / (1 + exp(-g))) · u (or into gate itself)
 * - add: a += b
 * - bias: x[r, i] += bias[i]
 * - gather: out[i, :] = x[rows[i], :] (the rows of a batch that want logits)
 * - copy: dst = src
 * Indices run over gid.x + gid.y · 65535 · 64, so large tensors need no
 * second kind of dispatch.
 */

/**
 * The WGSL of one elementwise kernel: `bindings` in binding order (the
 * uniform `p: Params` comes after them), `body` run for each i < p.n.
 */
function elementwise(params: string, bindings: readonly string[], body: string): string {
  const declared = bindings.map((binding, index) => `@group(0) @binding(${index}) var<storage, ${binding};`);
  return /* wgsl */ `
struct Params { ${params} }
${declared.join('\n')}
@group(0) @binding(${bindings.length}) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.y * 65535u * 64u + gid.x;
  if (i >= p.n) { return; }
  ${body}
}
`;
}

const SILU = 'let g = gate[i];\n  let silu = g / (1.0 + exp(-g));';

export const SILU_MUL_SHADER = elementwise('n: u32', ['read> gate: array<f32>', 'read> up: array<f32>', 'read_write> out: array<f32>'], `${SILU}\n  out[i] = silu * up[i];`);

/** silu-mul into gate itself (a buffer cannot be bound twice when one binding writes). */
export const SILU_MUL_IN_PLACE_SHADER = elementwise('n: u32', ['read_write> gate: array<f32>', 'read> up: array<f32>'], `${SILU}\n  gate[i] = silu * up[i];`);

export const ADD_SHADER = elementwise('n: u32', ['read_write> a: array<f32>', 'read> b: array<f32>'], 'a[i] = a[i] + b[i];');

export const BIAS_SHADER = elementwise('n: u32, dim: u32', ['read_write> x: array<f32>', 'read> bias: array<f32>'], 'x[i] = x[i] + bias[i % p.dim];');

export const GATHER_SHADER = elementwise(
  'n: u32, rowSize: u32',
  ['read> x: array<f32>', 'read> rows: array<i32>', 'read_write> out: array<f32>'],
  'let r = i / p.rowSize;\n  out[i] = x[u32(rows[r]) * p.rowSize + i % p.rowSize];',
);

export const COPY_SHADER = elementwise('n: u32', ['read> src: array<f32>', 'read_write> dst: array<f32>'], 'dst[i] = src[i];');
