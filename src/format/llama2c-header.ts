/**
 * The header and byte layout of a karpathy/llama2.c checkpoint (the legacy
 * "v0" float32 format that run.c reads): seven little-endian int32s, then
 * every weight as float32 in one fixed order, with no padding. A negative
 * vocab_size marks an untied classifier stored at the very end.
 */
import { TesseraError, check } from '../core/errors.js';

export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  seqLen: number;
  /** The classifier is the token embedding (vocab_size was positive). */
  sharedClassifier: boolean;
}

export const LLAMA2C_HEADER_BYTES = 28;
/** Magic of llama2.c's later exports (export.py --version 1/2): "ak42" as a little-endian uint32. */
export const LLAMA2C_EXPORT_MAGIC = 0x616b3432;

/** A run of tensors in the file; `perLayer` runs hold one tensor per layer back to back. */
export interface Llama2cRegion {
  /** Canonical name (`{layer}` replaced per layer), or undefined for skipped legacy data. */
  readonly name: string | undefined;
  readonly perLayer: boolean;
  /** Shape of one tensor, row-major. */
  readonly shape: readonly number[];
}

/** Decodes the 28-byte header; does not judge plausibility (see `implausibility`). */
export function decodeLlama2cHeader(bytes: Uint8Array): Llama2cHeader {
  check(bytes.byteLength >= LLAMA2C_HEADER_BYTES, 'TESSERA_ERR_TRUNCATED', 'the llama2.c checkpoint is shorter than its 28-byte header; download it again');
  const view = new DataView(bytes.buffer, bytes.byteOffset, LLAMA2C_HEADER_BYTES);
  const int = (i: number): number => view.getInt32(i * 4, true);
  const vocab = int(5);
  return {
    dim: int(0),
    hiddenDim: int(1),
    numLayers: int(2),
    numHeads: int(3),
    numKvHeads: int(4),
    vocabSize: Math.abs(vocab),
    seqLen: int(6),
    sharedClassifier: vocab > 0,
  };
}

/** Why the header cannot be a llama2.c model, or undefined when it is plausible. */
export function implausibility(h: Llama2cHeader): string | undefined {
  const limits: Array<[keyof Llama2cHeader, number]> = [
    ['dim', 1 << 16], ['hiddenDim', 1 << 20], ['numLayers', 1024], ['numHeads', 1024],
    ['numKvHeads', 1024], ['vocabSize', 1 << 22], ['seqLen', 1 << 22],
  ];
  for (const [key, max] of limits) {
    const value = h[key] as number;
    if (!(value >= 1 && value <= max)) return `${key}=${value} is outside 1..${max}`;
  }
  if (h.dim % h.numHeads !== 0) return `dim=${h.dim} is not a multiple of n_heads=${h.numHeads}`;
  if (h.numHeads % h.numKvHeads !== 0) return `n_heads=${h.numHeads} is not a multiple of n_kv_heads=${h.numKvHeads}`;
  if ((h.dim / h.numHeads) % 2 !== 0) return `head size ${h.dim / h.numHeads} is odd, RoPE needs pairs`;
  return undefined;
}

/** The file's contents in order, as run.c's memory_map_weights walks them. */
export function llama2cLayout(h: Llama2cHeader): Llama2cRegion[] {
  const headSize = h.dim / h.numHeads;
  const kvDim = headSize * h.numKvHeads;
  const regions: Llama2cRegion[] = [
    { name: 'token_embd.weight', perLayer: false, shape: [h.vocabSize, h.dim] },
    { name: 'blk.{layer}.attn_norm.weight', perLayer: true, shape: [h.dim] },
    { name: 'blk.{layer}.attn_q.weight', perLayer: true, shape: [h.dim, h.dim] },
    { name: 'blk.{layer}.attn_k.weight', perLayer: true, shape: [kvDim, h.dim] },
    { name: 'blk.{layer}.attn_v.weight', perLayer: true, shape: [kvDim, h.dim] },
    { name: 'blk.{layer}.attn_output.weight', perLayer: true, shape: [h.dim, h.dim] },
    { name: 'blk.{layer}.ffn_norm.weight', perLayer: true, shape: [h.dim] },
    { name: 'blk.{layer}.ffn_gate.weight', perLayer: true, shape: [h.hiddenDim, h.dim] },
    { name: 'blk.{layer}.ffn_down.weight', perLayer: true, shape: [h.dim, h.hiddenDim] },
    { name: 'blk.{layer}.ffn_up.weight', perLayer: true, shape: [h.hiddenDim, h.dim] },
    { name: 'output_norm.weight', perLayer: false, shape: [h.dim] },
    // Legacy RoPE tables (freq_cis_real, freq_cis_imag); run.c recomputes them.
    { name: undefined, perLayer: false, shape: [h.seqLen, headSize / 2] },
    { name: undefined, perLayer: false, shape: [h.seqLen, headSize / 2] },
  ];
  if (!h.sharedClassifier) regions.push({ name: 'output.weight', perLayer: false, shape: [h.vocabSize, h.dim] });
  return regions;
}

/** Float32 elements of a region (all layers of a per-layer region). */
export function regionElements(region: Llama2cRegion, h: Llama2cHeader): number {
  const one = region.shape.reduce((a, b) => a * b, 1);
  return region.perLayer ? one * h.numLayers : one;
}

/** Exact file size a header implies. */
export function llama2cFileSize(h: Llama2cHeader): number {
  const floats = llama2cLayout(h).reduce((sum, r) => sum + regionElements(r, h), 0);
  return LLAMA2C_HEADER_BYTES + 4 * floats;
}

/**
 * Throws the coded error for a file that starts with the "ak42" magic of the
 * newer llama2.c exports; returns when the magic is absent.
 */
export function rejectNewerExport(bytes: Uint8Array, path: string): void {
  if (bytes.byteLength < 8) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  if (view.getUint32(0, true) !== LLAMA2C_EXPORT_MAGIC) return;
  const version = view.getInt32(4, true);
  if (version === 2) {
    throw new TesseraError('TESSERA_ERR_UNSUPPORTED_DTYPE', `${path}: int8 llama2.c export v2 is not supported; use the float32 .bin`);
  }
  throw new TesseraError(
    'TESSERA_ERR_BAD_FORMAT',
    `${path}: llama2.c export version ${version} is not supported; use the legacy float32 .bin (export.py --version 0)`,
  );
}

/** Checks a header against the actual file size, with the reason when they disagree. */
export function checkLlama2cSize(h: Llama2cHeader, fileSize: number, path: string): void {
  const expected = llama2cFileSize(h);
  if (fileSize === expected) return;
  if (fileSize < expected) {
    throw new TesseraError(
      'TESSERA_ERR_TRUNCATED',
      `${path} is ${fileSize} bytes but its llama2.c header implies ${expected}; the file is truncated, download it again`,
    );
  }
  const classifierBytes = 4 * h.vocabSize * h.dim;
  const hint = h.sharedClassifier && fileSize === expected + classifierBytes
    ? ' (it looks like an untied classifier follows, but vocab_size is positive, which marks a tied one)'
    : '';
  throw new TesseraError(
    'TESSERA_ERR_BAD_FORMAT',
    `${path} is ${fileSize} bytes but its llama2.c header implies ${expected}${hint}; is it a llama2.c float32 checkpoint?`,
  );
}
