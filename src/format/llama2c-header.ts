/**
 * The header and byte layout of a karpathy/llama2.c checkpoint. The legacy
 * "v0" float32 format that run.c reads: seven little-endian int32s, then
 * every weight as float32 in one fixed order, with no padding; a negative
 * vocab_size marks an untied classifier stored at the very end. The "v1"
 * float32 export (export.py --version 1) has a 256-byte header starting with
 * the "ak42" magic and stores the same weights in another order, without the
 * legacy RoPE tables. The int8 "v2" export is not read.
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
  /** 0: legacy run.c format; 1: export.py --version 1 (float32, "ak42" header). */
  exportVersion: 0 | 1;
}

export const LLAMA2C_HEADER_BYTES = 28;
/** Header size of the "ak42" exports, zero-padded. */
export const LLAMA2C_EXPORT_HEADER_BYTES = 256;
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
    exportVersion: 0,
  };
}

/**
 * Decodes a version 1 header: magic, version, the same seven ints (vocab
 * always positive) and a shared-classifier byte, in 256 bytes.
 */
export function decodeLlama2cV1Header(bytes: Uint8Array): Llama2cHeader {
  check(bytes.byteLength >= 37, 'TESSERA_ERR_TRUNCATED', 'the llama2.c checkpoint is shorter than its 256-byte header; download it again');
  const legacy = decodeLlama2cHeader(bytes.subarray(8, 36));
  return { ...legacy, sharedClassifier: bytes[36] !== 0, exportVersion: 1 };
}

/** Bytes before the first weight. */
export function llama2cHeaderBytes(h: Llama2cHeader): number {
  return h.exportVersion === 1 ? LLAMA2C_EXPORT_HEADER_BYTES : LLAMA2C_HEADER_BYTES;
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
  const region = (name: string, perLayer: boolean, shape: number[]): Llama2cRegion => ({ name, perLayer, shape });
  const embedding = region('token_embd.weight', false, [h.vocabSize, h.dim]);
  const attnNorm = region('blk.{layer}.attn_norm.weight', true, [h.dim]);
  const ffnNorm = region('blk.{layer}.ffn_norm.weight', true, [h.dim]);
  const outputNorm = region('output_norm.weight', false, [h.dim]);
  const matrices = [
    region('blk.{layer}.attn_q.weight', true, [h.dim, h.dim]),
    region('blk.{layer}.attn_k.weight', true, [kvDim, h.dim]),
    region('blk.{layer}.attn_v.weight', true, [kvDim, h.dim]),
    region('blk.{layer}.attn_output.weight', true, [h.dim, h.dim]),
  ];
  const ffn = [
    region('blk.{layer}.ffn_gate.weight', true, [h.hiddenDim, h.dim]), // w1
    region('blk.{layer}.ffn_down.weight', true, [h.dim, h.hiddenDim]), // w2
    region('blk.{layer}.ffn_up.weight', true, [h.hiddenDim, h.dim]), // w3
  ];
  // Legacy RoPE tables (freq_cis_real, freq_cis_imag); run.c recomputes them.
  const ropeTable: Llama2cRegion = { name: undefined, perLayer: false, shape: [h.seqLen, headSize / 2] };
  const regions = h.exportVersion === 1
    ? [attnNorm, ffnNorm, outputNorm, embedding, ...matrices, ...ffn]
    : [embedding, attnNorm, ...matrices, ffnNorm, ...ffn, outputNorm, ropeTable, ropeTable];
  if (!h.sharedClassifier) regions.push(region('output.weight', false, [h.vocabSize, h.dim]));
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
  return llama2cHeaderBytes(h) + 4 * floats;
}

/**
 * The export version a file's first bytes announce: 0 for the legacy format
 * (no magic), else the version after the "ak42" magic.
 */
export function llama2cExportVersion(bytes: Uint8Array): number {
  if (bytes.byteLength < 8) return 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, 8);
  return view.getUint32(0, true) === LLAMA2C_EXPORT_MAGIC ? view.getInt32(4, true) : 0;
}

/** Throws the coded error for an export version Tessera cannot read. */
export function rejectUnsupportedExport(bytes: Uint8Array, path: string): void {
  const version = llama2cExportVersion(bytes);
  if (version === 0 || version === 1) return;
  if (version === 2) {
    throw new TesseraError('TESSERA_ERR_UNSUPPORTED_DTYPE', `${path}: int8 llama2.c export v2 is not supported; use the float32 .bin`);
  }
  throw new TesseraError(
    'TESSERA_ERR_BAD_FORMAT',
    `${path}: llama2.c export version ${version} is not supported; use a float32 export (export.py --version 0 or 1)`,
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
