/**
 * A TensorStore over a llama2.c checkpoint. The file holds each weight kind
 * for all layers in one run ([numLayers, rows, cols]); the store slices those
 * runs into canonical per-layer tensors (`blk.N.attn_q.weight` …) and reads
 * their rows lazily by byte range.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { TesseraError, check } from '../core/errors.js';
import { matrixShape, type TensorInfo, type TensorStore } from './tensor-store.js';
import { readColumnSlice } from './column-read.js';
import { openForReading, readExactly } from './safetensors-header.js';
import {
  LLAMA2C_EXPORT_HEADER_BYTES,
  LLAMA2C_EXPORT_MAGIC,
  LLAMA2C_HEADER_BYTES,
  checkLlama2cSize,
  decodeLlama2cHeader,
  decodeLlama2cV1Header,
  implausibility,
  llama2cExportVersion,
  llama2cHeaderBytes,
  llama2cLayout,
  regionElements,
  rejectUnsupportedExport,
  type Llama2cHeader,
} from './llama2c-header.js';

export type { Llama2cHeader } from './llama2c-header.js';

interface StoredTensor {
  readonly info: TensorInfo;
  /** Absolute byte offset of the tensor in the file. */
  readonly offset: number;
}

export class Llama2cStore implements TensorStore {
  readonly format = 'llama2c' as const;
  readonly header: Llama2cHeader;
  readonly path: string;
  private readonly fd: number;
  private readonly tensors = new Map<string, StoredTensor>();
  private bytesReadSoFar = 0;
  private closed = false;

  constructor(path: string) {
    this.path = path;
    this.fd = openForReading(path);
    try {
      this.header = readLlama2cHeader(this.fd, path);
      this.indexTensors();
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  private indexTensors(): void {
    let offset = llama2cHeaderBytes(this.header);
    for (const region of llama2cLayout(this.header)) {
      const oneBytes = 4 * region.shape.reduce((a, b) => a * b, 1);
      if (region.name !== undefined) {
        const layers = region.perLayer ? this.header.numLayers : 1;
        for (let layer = 0; layer < layers; layer++) {
          const name = region.name.replace('{layer}', String(layer));
          this.tensors.set(name, { info: { name, dtype: 'f32', shape: region.shape }, offset: offset + layer * oneBytes });
        }
      }
      offset += 4 * regionElements(region, this.header);
    }
  }

  get bytesRead(): number {
    return this.bytesReadSoFar;
  }

  list(): TensorInfo[] {
    return [...this.tensors.values()].map((t) => t.info);
  }

  get(name: string): TensorInfo | undefined {
    return this.tensors.get(name)?.info;
  }

  /** Absolute byte offset of a tensor in the file (for tools and tests). */
  offsetOf(name: string): number | undefined {
    return this.tensors.get(name)?.offset;
  }

  readRows(name: string, rowStart: number, rowEnd: number): Uint8Array {
    check(!this.closed, 'TESSERA_ERR_INVALID_ARGUMENT', 'the llama2.c store is closed');
    const stored = this.tensors.get(name);
    if (!stored) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the llama2.c checkpoint has no tensor ${name}; llama2.c models hold only Llama weights`);
    }
    const { rows, cols } = matrixShape(stored.info.shape);
    check(
      Number.isInteger(rowStart) && Number.isInteger(rowEnd) && 0 <= rowStart && rowStart <= rowEnd && rowEnd <= rows,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `rows [${rowStart}, ${rowEnd}) are outside tensor ${name} with ${rows} rows`,
    );
    const length = (rowEnd - rowStart) * cols * 4;
    const bytes = readExactly(this.fd, this.path, stored.offset + rowStart * cols * 4, length);
    this.bytesReadSoFar += length;
    return bytes;
  }

  readColumns(name: string, colStart: number, colEnd: number): Uint8Array {
    check(!this.closed, 'TESSERA_ERR_INVALID_ARGUMENT', 'the llama2.c store is closed');
    const stored = this.tensors.get(name);
    if (!stored) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the llama2.c checkpoint has no tensor ${name}; llama2.c models hold only Llama weights`);
    }
    const bytes = readColumnSlice(this.fd, this.path, stored.offset, stored.info, colStart, colEnd);
    this.bytesReadSoFar += bytes.byteLength;
    return bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Reads and validates the header of the checkpoint open as `fd`. */
function readLlama2cHeader(fd: number, path: string): Llama2cHeader {
  const fileSize = fstatSync(fd).size;
  check(fileSize >= LLAMA2C_HEADER_BYTES, 'TESSERA_ERR_TRUNCATED', `${path} is ${fileSize} bytes, shorter than a llama2.c header; download it again`);
  const start = readExactly(fd, path, 0, LLAMA2C_HEADER_BYTES);
  rejectUnsupportedExport(start, path);
  const header = llama2cExportVersion(start) === 1
    ? decodeLlama2cV1Header(readExactly(fd, path, 0, LLAMA2C_EXPORT_HEADER_BYTES))
    : decodeLlama2cHeader(start);
  const reason = implausibility(header);
  if (reason !== undefined) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path} is not a llama2.c checkpoint: ${reason}`);
  }
  checkLlama2cSize(header, fileSize, path);
  return header;
}

/**
 * True when `path` starts with a plausible llama2.c header (or the magic of a
 * newer llama2.c export, which opening then rejects with a clear message).
 * The file size is not checked, so a truncated checkpoint is still recognised.
 */
export function isLlama2cCheckpoint(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    const bytes = Buffer.alloc(LLAMA2C_HEADER_BYTES);
    if (readSync(fd, bytes, 0, bytes.length, 0) < bytes.length) return false;
    if (bytes.readUInt32LE(0) === LLAMA2C_EXPORT_MAGIC) return true;
    return implausibility(decodeLlama2cHeader(bytes)) === undefined;
  } finally {
    closeSync(fd);
  }
}

/** Opens a llama2.c checkpoint. */
export function openLlama2c(path: string): Llama2cStore {
  return new Llama2cStore(path);
}
