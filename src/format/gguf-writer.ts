/**
 * GGUF writer (v3 by default, v2 on request). The header goes through a small
 * buffer and each tensor's bytes are asked for only when they are written, so
 * a converter can stream a model larger than memory.
 */
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { byteSize, DTYPE_LAYOUTS } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape } from './tensor-store.js';
import {
  alignUp,
  GGML_TYPE_BY_DTYPE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_MAX_DIMS,
  GgufValueType,
  type GgufHeader,
  type GgufMetadataEntry,
  type GgufValue,
  type GgufWriteTensor,
} from './gguf-types.js';

export * from './gguf-types.js';

const FLUSH_BYTES = 1 << 20;

function invalid(message: string): TesseraError {
  return new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', message);
}

/** Little-endian byte sink over a file descriptor that tracks the file position. */
class FileSink {
  position = 0;
  private buffer = Buffer.alloc(FLUSH_BYTES * 2);
  private used = 0;

  constructor(private readonly fd: number) {}

  private room(length: number): number {
    if (this.used + length > this.buffer.length) this.flush();
    if (length > this.buffer.length) this.buffer = Buffer.alloc(length);
    const at = this.used;
    this.used += length;
    this.position += length;
    return at;
  }

  flush(): void {
    let written = 0;
    while (written < this.used) written += writeSync(this.fd, this.buffer, written, this.used - written);
    this.used = 0;
  }

  u8(v: number): void { this.buffer.writeUInt8(v, this.room(1)); }
  i8(v: number): void { this.buffer.writeInt8(v, this.room(1)); }
  u16(v: number): void { this.buffer.writeUInt16LE(v, this.room(2)); }
  i16(v: number): void { this.buffer.writeInt16LE(v, this.room(2)); }
  u32(v: number): void { this.buffer.writeUInt32LE(v, this.room(4)); }
  i32(v: number): void { this.buffer.writeInt32LE(v, this.room(4)); }
  f32(v: number): void { this.buffer.writeFloatLE(v, this.room(4)); }
  f64(v: number): void { this.buffer.writeDoubleLE(v, this.room(8)); }
  u64(v: number | bigint): void { this.buffer.writeBigUInt64LE(BigInt(v), this.room(8)); }
  i64(v: number | bigint): void { this.buffer.writeBigInt64LE(BigInt(v), this.room(8)); }

  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.bytes(bytes);
  }

  bytes(data: Uint8Array): void {
    if (data.length >= FLUSH_BYTES) {
      this.flush();
      let written = 0;
      while (written < data.length) written += writeSync(this.fd, data, written, data.length - written);
      this.position += data.length;
      return;
    }
    this.buffer.set(data, this.room(data.length));
  }

  padTo(alignment: number): void {
    const pad = alignUp(this.position, alignment) - this.position;
    if (pad > 0) this.bytes(new Uint8Array(pad));
  }
}

/** Element type for an array whose entries carry no declared type (nested arrays). */
function inferType(values: readonly GgufValue[]): GgufValueType {
  const first = values[0];
  if (typeof first === 'string') return GgufValueType.STRING;
  if (typeof first === 'boolean') return GgufValueType.BOOL;
  if (typeof first === 'bigint') return GgufValueType.INT64;
  if (Array.isArray(first)) return GgufValueType.ARRAY;
  const numbers = values as number[];
  if (numbers.every(Number.isInteger)) {
    return numbers.every((n) => n >= -0x80000000 && n <= 0x7fffffff) ? GgufValueType.INT32 : GgufValueType.INT64;
  }
  return GgufValueType.FLOAT32;
}

function expectNumber(value: GgufValue, key: string): number {
  if (typeof value !== 'number') throw invalid(`GGUF metadata ${key}: expected a number, got ${typeof value}`);
  return value;
}

function expectInteger(value: GgufValue, key: string, min: number | bigint, max: number | bigint): number | bigint {
  if (typeof value !== 'number' && typeof value !== 'bigint') throw invalid(`GGUF metadata ${key}: expected an integer, got ${typeof value}`);
  const ok = typeof value === 'bigint' ? value >= BigInt(min) && value <= BigInt(max) : Number.isInteger(value) && value >= Number(min) && value <= Number(max);
  if (!ok) throw invalid(`GGUF metadata ${key}: ${value} is out of range for its type`);
  return value;
}

function writeValue(sink: FileSink, type: GgufValueType, value: GgufValue, key: string, arrayType?: GgufValueType): void {
  switch (type) {
    case GgufValueType.UINT8: return sink.u8(Number(expectInteger(value, key, 0, 0xff)));
    case GgufValueType.INT8: return sink.i8(Number(expectInteger(value, key, -0x80, 0x7f)));
    case GgufValueType.UINT16: return sink.u16(Number(expectInteger(value, key, 0, 0xffff)));
    case GgufValueType.INT16: return sink.i16(Number(expectInteger(value, key, -0x8000, 0x7fff)));
    case GgufValueType.UINT32: return sink.u32(Number(expectInteger(value, key, 0, 0xffffffff)));
    case GgufValueType.INT32: return sink.i32(Number(expectInteger(value, key, -0x80000000, 0x7fffffff)));
    case GgufValueType.FLOAT32: return sink.f32(expectNumber(value, key));
    case GgufValueType.FLOAT64: return sink.f64(expectNumber(value, key));
    case GgufValueType.UINT64: return sink.u64(expectInteger(value, key, 0n, 0xffffffffffffffffn));
    case GgufValueType.INT64: return sink.i64(expectInteger(value, key, -(1n << 63n), (1n << 63n) - 1n));
    case GgufValueType.BOOL:
      if (typeof value !== 'boolean') throw invalid(`GGUF metadata ${key}: expected a boolean, got ${typeof value}`);
      return sink.u8(value ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof value !== 'string') throw invalid(`GGUF metadata ${key}: expected a string, got ${typeof value}`);
      return sink.string(value);
    case GgufValueType.ARRAY: {
      if (!Array.isArray(value)) throw invalid(`GGUF metadata ${key}: expected an array, got ${typeof value}`);
      const elementType = arrayType ?? inferType(value);
      sink.u32(elementType);
      sink.u64(value.length);
      for (const element of value) writeValue(sink, elementType, element, key);
      return;
    }
    default:
      throw invalid(`GGUF metadata ${key}: unknown value type ${String(type)}`);
  }
}

function checkTensor(tensor: GgufWriteTensor): void {
  const { dtype, shape, name } = tensor;
  if (shape.length > GGUF_MAX_DIMS || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw invalid(`tensor ${name}: shape [${shape.join(', ')}] is not 0 to ${GGUF_MAX_DIMS} non-negative integer dimensions`);
  }
  const { cols } = matrixShape(shape);
  if (cols % DTYPE_LAYOUTS[dtype].blockSize !== 0) {
    throw invalid(`tensor ${name}: rows of ${cols} elements are not whole ${dtype} blocks of ${DTYPE_LAYOUTS[dtype].blockSize}`);
  }
}

function tensorBytes(tensor: GgufWriteTensor): number {
  return byteSize(tensor.dtype, tensor.shape.reduce((a, b) => a * b, 1));
}

function resolveAlignment(metadata: GgufMetadataEntry[], requested: number | undefined): { alignment: number; metadata: GgufMetadataEntry[] } {
  const declared = metadata.find((m) => m.key === 'general.alignment');
  const alignment = requested ?? (declared ? Number(declared.value) : GGUF_DEFAULT_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw invalid(`GGUF alignment ${alignment} is not a power of two`);
  }
  if (declared && Number(declared.value) !== alignment) {
    throw invalid(`general.alignment is ${String(declared.value)} in the metadata but ${alignment} was requested; give one of them`);
  }
  if (declared || alignment === GGUF_DEFAULT_ALIGNMENT) return { alignment, metadata };
  return { alignment, metadata: [...metadata, { key: 'general.alignment', type: GgufValueType.UINT32, value: alignment }] };
}

function writeHeader(sink: FileSink, version: number, metadata: GgufMetadataEntry[], tensors: GgufWriteTensor[], alignment: number): void {
  sink.u32(GGUF_MAGIC);
  sink.u32(version);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  for (const entry of metadata) {
    sink.string(entry.key);
    sink.u32(entry.type);
    writeValue(sink, entry.type, entry.value, entry.key, entry.arrayType);
  }
  let offset = 0;
  for (const tensor of tensors) {
    sink.string(tensor.name);
    sink.u32(tensor.shape.length);
    for (const dim of [...tensor.shape].reverse()) sink.u64(dim);
    sink.u32(GGML_TYPE_BY_DTYPE[tensor.dtype]);
    sink.u64(offset);
    offset = alignUp(offset + tensorBytes(tensor), alignment);
  }
  sink.padTo(alignment);
}

function writeTensorData(sink: FileSink, tensors: GgufWriteTensor[], alignment: number): void {
  for (const tensor of tensors) {
    const data = tensor.data();
    const expected = tensorBytes(tensor);
    if (data.length !== expected) {
      throw invalid(`tensor ${tensor.name}: data has ${data.length} bytes but a ${tensor.dtype} tensor of shape [${tensor.shape.join(', ')}] needs ${expected}`);
    }
    sink.bytes(data);
    sink.padTo(alignment);
  }
}

/** A read header's metadata as writer entries, in file order with their declared types (to copy or re-quantize a file). */
export function metadataEntries(header: Pick<GgufHeader, 'metadata' | 'types'>): GgufMetadataEntry[] {
  return [...header.metadata].map(([key, value]) => {
    const info = header.types.get(key);
    if (!info) throw invalid(`GGUF metadata ${key} has no recorded type`);
    return { key, value, type: info.type, arrayType: info.arrayType };
  });
}

/** Writes a GGUF file; on failure the partial file is removed. */
export function writeGguf(
  path: string,
  file: { metadata: GgufMetadataEntry[]; tensors: GgufWriteTensor[]; version?: 2 | 3; alignment?: number },
): void {
  const version = file.version ?? 3;
  if (version !== 2 && version !== 3) throw invalid(`GGUF version ${String(version)} cannot be written; use 2 or 3`);
  const { alignment, metadata } = resolveAlignment(file.metadata, file.alignment);
  const names = new Set<string>();
  for (const tensor of file.tensors) {
    if (names.has(tensor.name)) throw invalid(`tensor ${tensor.name} is given twice`);
    names.add(tensor.name);
    checkTensor(tensor);
  }
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_FILE_READ', `${path}: cannot create the file (${(error as NodeJS.ErrnoException).code ?? String(error)}); check the folder exists and is writable`, { cause: error });
  }
  try {
    const sink = new FileSink(fd);
    writeHeader(sink, version, metadata, file.tensors, alignment);
    writeTensorData(sink, file.tensors, alignment);
    sink.flush();
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(path);
    throw error;
  }
}
