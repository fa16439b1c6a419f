/**
 * GGUF reader: parses the header (metadata and tensor infos) of a v2/v3 file
 * through a small read window, and `GgufStore` serves tensor rows by byte
 * range. Tensor names in GGUF files are already canonical.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { byteSize, DTYPE_LAYOUTS } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape, type TensorInfo, type TensorStore } from './tensor-store.js';
import { readColumnSlice, readColumnSliceInto } from './column-read.js';
import { sliceBytes } from './slice-bytes.js';
import { FileCursor } from './gguf-cursor.js';
import {
  alignUp,
  dtypeOfGgmlType,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  ggmlTypeName,
  GgufValueType,
  type GgufHeader,
  type GgufTensorInfo,
  type GgufValue,
  type GgufValueTypeInfo,
} from './gguf-types.js';

export * from './gguf-types.js';
export * from './gguf-metadata.js';

/** Smallest encoded size of a value of each type, to reject absurd array counts before allocating. */
const MIN_VALUE_BYTES: Readonly<Record<GgufValueType, number>> = {
  [GgufValueType.UINT8]: 1,
  [GgufValueType.INT8]: 1,
  [GgufValueType.UINT16]: 2,
  [GgufValueType.INT16]: 2,
  [GgufValueType.UINT32]: 4,
  [GgufValueType.INT32]: 4,
  [GgufValueType.FLOAT32]: 4,
  [GgufValueType.BOOL]: 1,
  [GgufValueType.STRING]: 8,
  [GgufValueType.ARRAY]: 12,
  [GgufValueType.UINT64]: 8,
  [GgufValueType.INT64]: 8,
  [GgufValueType.FLOAT64]: 8,
};

/**
 * Bytes a count may claim before it is called corrupt rather than cut short:
 * the whole file, but never less than 1 MiB so that a file truncated inside
 * its header reads as truncated (allocations stay bounded either way).
 */
function plausibleBytes(cursor: FileCursor): number {
  return Math.max(cursor.fileSize, 1 << 20);
}

function badFormat(path: string, message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path}: ${message}; the file is corrupt or not a GGUF file`);
}

function safe64(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function checkValueType(type: number, path: string, key: string): GgufValueType {
  if (!(type in MIN_VALUE_BYTES)) throw badFormat(path, `metadata key ${key} has unknown value type ${type}`);
  return type as GgufValueType;
}

function readArray(cursor: FileCursor, elementType: GgufValueType, path: string, key: string): GgufValue[] {
  const length = cursor.count(`the length of array ${key}`);
  if (length * MIN_VALUE_BYTES[elementType] > plausibleBytes(cursor)) {
    throw badFormat(path, `array ${key} claims ${length} elements, more than the file can hold`);
  }
  const values: GgufValue[] = new Array<GgufValue>(length);
  for (let i = 0; i < length; i++) values[i] = readValue(cursor, elementType, path, key);
  return values;
}

function readValue(cursor: FileCursor, type: GgufValueType, path: string, key: string): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return cursor.u8();
    case GgufValueType.INT8: return cursor.i8();
    case GgufValueType.UINT16: return cursor.u16();
    case GgufValueType.INT16: return cursor.i16();
    case GgufValueType.UINT32: return cursor.u32();
    case GgufValueType.INT32: return cursor.i32();
    case GgufValueType.FLOAT32: return cursor.f32();
    case GgufValueType.BOOL: return cursor.u8() !== 0;
    case GgufValueType.STRING: return cursor.string();
    case GgufValueType.ARRAY: return readArray(cursor, checkValueType(cursor.u32(), path, key), path, key);
    case GgufValueType.UINT64: return safe64(cursor.u64());
    case GgufValueType.INT64: return safe64(cursor.i64());
    case GgufValueType.FLOAT64: return cursor.f64();
  }
}

function readVersion(cursor: FileCursor, path: string): number {
  if (cursor.fileSize < 8) {
    throw new TesseraError('TESSERA_ERR_TRUNCATED', `${path}: only ${cursor.fileSize} bytes, too short for a GGUF header; the file is truncated; download it again`);
  }
  const magic = cursor.u32();
  if (magic !== GGUF_MAGIC) throw badFormat(path, `bad magic 0x${magic.toString(16).padStart(8, '0')} (expected "GGUF")`);
  const version = cursor.u32();
  if (version === 1) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path}: GGUF version 1 is not supported; re-convert the model with a current llama.cpp (versions 2 and 3 are read)`);
  }
  if ((version & 0xffff) === 0 && version >>> 16 !== 0) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path}: this is a big-endian GGUF file; only little-endian files are supported, use the little-endian build of this model`);
  }
  if (version !== 2 && version !== 3) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path}: GGUF version ${version} is not supported (versions 2 and 3 are); update Tessera or re-convert the model`);
  }
  return version;
}

function readMetadata(cursor: FileCursor, path: string, count: number): Pick<GgufHeader, 'metadata' | 'types'> {
  const metadata = new Map<string, GgufValue>();
  const types = new Map<string, GgufValueTypeInfo>();
  for (let i = 0; i < count; i++) {
    const key = cursor.string();
    const type = checkValueType(cursor.u32(), path, key);
    if (type === GgufValueType.ARRAY) {
      const arrayType = checkValueType(cursor.u32(), path, key);
      metadata.set(key, readArray(cursor, arrayType, path, key));
      types.set(key, { type, arrayType });
    } else {
      metadata.set(key, readValue(cursor, type, path, key));
      types.set(key, { type });
    }
  }
  return { metadata, types };
}

interface RawTensorInfo {
  name: string;
  ne: number[];
  type: number;
  relativeOffset: number;
}

function readTensorInfo(cursor: FileCursor, path: string): RawTensorInfo {
  const name = cursor.string();
  const dims = cursor.u32();
  if (dims > GGUF_MAX_DIMS) throw badFormat(path, `tensor ${name} claims ${dims} dimensions (at most ${GGUF_MAX_DIMS})`);
  const ne: number[] = [];
  for (let d = 0; d < dims; d++) ne.push(cursor.count(`dimension ${d} of tensor ${name}`));
  const type = cursor.u32();
  const relativeOffset = cursor.count(`the offset of tensor ${name}`);
  return { name, ne, type, relativeOffset };
}

function resolveTensor(raw: RawTensorInfo, path: string, dataOffset: number, alignment: number, fileSize: number): GgufTensorInfo {
  const dtype = dtypeOfGgmlType(raw.type);
  if (dtype === undefined) {
    throw new TesseraError(
      'TESSERA_ERR_UNSUPPORTED_DTYPE',
      `${path}: tensor ${raw.name} is stored as ggml type ${ggmlTypeName(raw.type)}, which Tessera does not support; use a file quantized as F32, F16, BF16, Q8_0, Q4_0, Q4_K or Q6_K (e.g. Q4_K_M)`,
    );
  }
  const shape = [...raw.ne].reverse();
  const elements = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(elements)) throw badFormat(path, `tensor ${raw.name} has an absurd shape [${shape.join(', ')}]`);
  const { cols } = matrixShape(shape);
  const blockSize = DTYPE_LAYOUTS[dtype].blockSize;
  if (cols % blockSize !== 0) {
    throw badFormat(path, `tensor ${raw.name} (${dtype}) has rows of ${cols} elements, not a multiple of its block size ${blockSize}`);
  }
  if (raw.relativeOffset % alignment !== 0) {
    throw badFormat(path, `tensor ${raw.name} starts at data offset ${raw.relativeOffset}, not a multiple of the alignment ${alignment}`);
  }
  const offset = dataOffset + raw.relativeOffset;
  const byteLength = byteSize(dtype, elements);
  if (offset + byteLength > fileSize) {
    throw new TesseraError(
      'TESSERA_ERR_TRUNCATED',
      `${path}: tensor ${raw.name} ends at byte ${offset + byteLength} but the file has ${fileSize} bytes; the file is truncated; download it again`,
    );
  }
  return { name: raw.name, dtype, shape, offset, byteLength };
}

function readAlignment(metadata: Map<string, GgufValue>, path: string): number {
  const value = metadata.get('general.alignment');
  if (value === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || (value & (value - 1)) !== 0) {
    throw badFormat(path, `general.alignment is ${String(value)}, not a power of two`);
  }
  return value;
}

function openForRead(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${path}: no such file; check the model path`, { cause: error });
    throw new TesseraError('TESSERA_ERR_FILE_READ', `${path}: cannot open (${code ?? String(error)}); check the path and its permissions`, { cause: error });
  }
}

function parseHeader(fd: number, path: string): GgufHeader {
  const fileSize = fstatSync(fd).size;
  const cursor = new FileCursor(fd, fileSize, path);
  const version = readVersion(cursor, path);
  const tensorCount = cursor.count('the tensor count');
  const metadataCount = cursor.count('the metadata count');
  // A tensor info takes at least 8 (name) + 4 (dims) + 4 (type) + 8 (offset) bytes; a key/value at least 8 + 4 + 1.
  if (tensorCount * 24 + metadataCount * 13 > plausibleBytes(cursor)) {
    throw badFormat(path, `the header claims ${tensorCount} tensors and ${metadataCount} metadata keys, more than the file can hold`);
  }
  const { metadata, types } = readMetadata(cursor, path, metadataCount);
  const alignment = readAlignment(metadata, path);
  const raw: RawTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) raw.push(readTensorInfo(cursor, path));
  const dataOffset = alignUp(cursor.position, alignment);
  const names = new Set<string>();
  const tensors = raw.map((r) => {
    if (names.has(r.name)) throw badFormat(path, `tensor ${r.name} appears twice`);
    names.add(r.name);
    return resolveTensor(r, path, dataOffset, alignment, fileSize);
  });
  return { version, metadata, types, tensors, alignment, dataOffset, fileSize };
}

/** Parses a GGUF file's header without reading its tensor data. */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openForRead(path);
  try {
    return parseHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}

/** A GGUF file as a lazily read TensorStore. */
export class GgufStore implements TensorStore {
  readonly format = 'gguf' as const;
  readonly header: GgufHeader;
  private readonly byName: Map<string, GgufTensorInfo>;
  private fd: number | undefined;
  private readCount = 0;

  constructor(readonly path: string) {
    const fd = openForRead(path);
    try {
      this.header = parseHeader(fd, path);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    this.fd = fd;
    this.byName = new Map(this.header.tensors.map((t) => [t.name, t]));
  }

  get bytesRead(): number {
    return this.readCount;
  }

  list(): TensorInfo[] {
    return this.header.tensors.map(({ name, dtype, shape }) => ({ name, dtype, shape }));
  }

  get(name: string): TensorInfo | undefined {
    const tensor = this.byName.get(name);
    return tensor && { name: tensor.name, dtype: tensor.dtype, shape: tensor.shape };
  }

  /** Full GGUF info (with file offset) of a tensor. */
  tensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  fileRange(name: string, rowStart: number, rowEnd: number): { path: string; byteOffset: number } | undefined {
    const tensor = this.byName.get(name);
    if (!tensor || rowStart < 0 || rowEnd < rowStart) return undefined;
    const { rows } = matrixShape(tensor.shape);
    if (rowEnd > rows) return undefined;
    return { path: this.path, byteOffset: tensor.offset + (tensor.byteLength / rows) * rowStart };
  }

  readRows(name: string, rowStart: number, rowEnd: number): Uint8Array {
    const { position, length } = this.rowRange(name, rowStart, rowEnd);
    const out = sliceBytes(length);
    this.readBytes(position, length, out, 0);
    return out;
  }

  readRowsInto(name: string, rowStart: number, rowEnd: number, target: Uint8Array, targetOffset: number): void {
    const { position, length } = this.rowRange(name, rowStart, rowEnd);
    if (targetOffset < 0 || targetOffset + length > target.byteLength) {
      throw new TesseraError('TESSERA_ERR_INTERNAL', `rows [${rowStart}, ${rowEnd}) of ${name} (${length} bytes) do not fit at ${targetOffset} of a ${target.byteLength}-byte target`);
    }
    this.readBytes(position, length, target, targetOffset);
  }

  /** Where rows [rowStart, rowEnd) of `name` lie in the file, after checking they exist. */
  private rowRange(name: string, rowStart: number, rowEnd: number): { position: number; length: number } {
    const tensor = this.byName.get(name);
    if (!tensor) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `${this.path} has no tensor ${name}; is it complete and of a supported architecture?`);
    }
    const { rows, cols } = matrixShape(tensor.shape);
    if (!(Number.isInteger(rowStart) && Number.isInteger(rowEnd) && rowStart >= 0 && rowStart <= rowEnd && rowEnd <= rows)) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `rows [${rowStart}, ${rowEnd}) are outside tensor ${name}, which has ${rows} rows`);
    }
    const rowBytes = byteSize(tensor.dtype, cols);
    return { position: tensor.offset + rowStart * rowBytes, length: (rowEnd - rowStart) * rowBytes };
  }

  readColumns(name: string, colStart: number, colEnd: number): Uint8Array {
    const tensor = this.byName.get(name);
    if (!tensor) throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `${this.path} has no tensor ${name}; is it complete and of a supported architecture?`);
    if (this.fd === undefined) throw new TesseraError('TESSERA_ERR_INTERNAL', `${this.path}: the store was closed; open the model again`);
    const bytes = readColumnSlice(this.fd, this.path, tensor.offset, tensor, colStart, colEnd);
    this.readCount += bytes.byteLength;
    return bytes;
  }

  readColumnsInto(name: string, colStart: number, colEnd: number, target: Uint8Array, targetRowBytes: number, targetOffset: number): void {
    const tensor = this.byName.get(name);
    if (!tensor) throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `${this.path} has no tensor ${name}; is it complete and of a supported architecture?`);
    if (this.fd === undefined) throw new TesseraError('TESSERA_ERR_INTERNAL', `${this.path}: the store was closed; open the model again`);
    readColumnSliceInto(this.fd, this.path, tensor.offset, tensor, colStart, colEnd, target, targetRowBytes, targetOffset);
    this.readCount += matrixShape(tensor.shape).rows * byteSize(tensor.dtype, colEnd - colStart);
  }

  private readBytes(position: number, length: number, out: Uint8Array, at: number): void {
    if (this.fd === undefined) throw new TesseraError('TESSERA_ERR_INTERNAL', `${this.path}: the store was closed; open the model again`);
    let filled = 0;
    while (filled < length) {
      const n = readSync(this.fd, out, at + filled, length - filled, position + filled);
      if (n === 0) {
        throw new TesseraError('TESSERA_ERR_TRUNCATED', `${this.path}: the file ended at byte ${position + filled}; the file is truncated; download it again`);
      }
      filled += n;
    }
    this.readCount += length;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
