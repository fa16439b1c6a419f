/**
 * The safetensors header: an 8-byte little-endian length, then that many bytes
 * of JSON mapping each tensor name to {dtype, shape, data_offsets}, where the
 * offsets count from the first byte after the header. Only the header is read
 * here; tensor bytes stay on disk until asked for.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { basename } from 'node:path';
import { byteSize, type DType } from '../core/dtype.js';
import { TesseraError, check } from '../core/errors.js';

/** Safetensors spells dtypes in capitals; these are the ones Tessera reads. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, 'f32' | 'f16' | 'bf16'>> = {
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
};

/** The official implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface SafetensorsEntry {
  /** Name as written in the file. */
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Absolute byte offset of the tensor's first byte in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly entries: SafetensorsEntry[];
  readonly metadata: Record<string, string>;
  readonly fileSize: number;
}

/**
 * Reads exactly `length` bytes at `position`, or throws TRUNCATED. The result
 * owns its ArrayBuffer from offset 0 (never a slice of Node's shared pool), so
 * callers may view it as a Float32Array directly.
 */
export function readExactly(fd: number, path: string, position: number, length: number): Uint8Array {
  const buffer = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) {
      throw new TesseraError('TESSERA_ERR_TRUNCATED', `${path} ends before byte ${position + length}; the file is truncated, download it again`);
    }
    done += n;
  }
  return buffer;
}

/** Opens a file for reading, mapping a missing file to FILE_NOT_FOUND. */
export function openForReading(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new TesseraError('TESSERA_ERR_FILE_NOT_FOUND', `${path} does not exist; check the model path`, { cause: error });
    }
    throw new TesseraError('TESSERA_ERR_FILE_READ', `cannot open ${path} (${code ?? String(error)}); check its permissions`, { cause: error });
  }
}

/** Parses the header of the safetensors file open as `fd`. */
export function readSafetensorsHeader(fd: number, path: string): SafetensorsHeader {
  const fileSize = fstatSync(fd).size;
  check(fileSize >= 8, 'TESSERA_ERR_TRUNCATED', `${path} is ${fileSize} bytes, too short for a safetensors header; download it again`);
  const headerLength = Number(new DataView(readExactly(fd, path, 0, 8).buffer).getBigUint64(0, true));
  check(
    headerLength >= 2 && headerLength <= MAX_HEADER_BYTES,
    'TESSERA_ERR_BAD_FORMAT',
    `${path} declares a ${headerLength}-byte safetensors header, which is not plausible; is it a safetensors file?`,
  );
  check(
    8 + headerLength <= fileSize,
    'TESSERA_ERR_TRUNCATED',
    `${path} declares a ${headerLength}-byte header but holds only ${fileSize} bytes; the file is truncated, download it again`,
  );
  const json = parseHeaderJson(readExactly(fd, path, 8, headerLength), path);
  const dataStart = 8 + headerLength;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(value, path);
    else entries.push(parseEntry(name, value, path, dataStart, fileSize));
  }
  return { entries, metadata, fileSize };
}

function parseHeaderJson(bytes: Uint8Array, path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `${path} has a safetensors header that is not valid JSON; the file is corrupt, download it again`, { cause: error });
  }
  check(isRecord(parsed), 'TESSERA_ERR_BAD_FORMAT', `${path} has a safetensors header that is not a JSON object; the file is corrupt`);
  return parsed;
}

function parseMetadata(value: unknown, path: string): Record<string, string> {
  check(isRecord(value), 'TESSERA_ERR_BAD_FORMAT', `${path}: __metadata__ must be an object of strings`);
  const metadata: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    check(typeof item === 'string', 'TESSERA_ERR_BAD_FORMAT', `${path}: __metadata__.${key} must be a string`);
    metadata[key] = item;
  }
  return metadata;
}

function parseEntry(name: string, value: unknown, path: string, dataStart: number, fileSize: number): SafetensorsEntry {
  const where = `${basename(path)}: tensor ${name}`;
  check(isRecord(value), 'TESSERA_ERR_BAD_FORMAT', `${where} is not described by an object; the file is corrupt`);
  const { dtype: rawDtype, shape, data_offsets: offsets } = value;
  check(typeof rawDtype === 'string', 'TESSERA_ERR_BAD_FORMAT', `${where} has no dtype; the file is corrupt`);
  const dtype = SAFETENSORS_DTYPES[rawDtype];
  if (dtype === undefined) {
    throw new TesseraError(
      'TESSERA_ERR_UNSUPPORTED_DTYPE',
      `${where} has dtype ${rawDtype}; Tessera reads F32, F16 and BF16 safetensors, convert the model to one of them`,
    );
  }
  check(
    Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0),
    'TESSERA_ERR_BAD_FORMAT',
    `${where} has an invalid shape; the file is corrupt`,
  );
  check(
    Array.isArray(offsets) && offsets.length === 2 && offsets.every((o) => Number.isSafeInteger(o) && o >= 0) && offsets[0] <= offsets[1],
    'TESSERA_ERR_BAD_FORMAT',
    `${where} has invalid data_offsets; the file is corrupt`,
  );
  const [begin, end] = offsets as [number, number];
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  check(
    end - begin === byteSize(dtype, elements),
    'TESSERA_ERR_BAD_FORMAT',
    `${where} spans ${end - begin} bytes but its shape [${shape.join(', ')}] needs ${byteSize(dtype, elements)}; the file is corrupt`,
  );
  check(
    dataStart + end <= fileSize,
    'TESSERA_ERR_TRUNCATED',
    `${where} ends at byte ${dataStart + end} but the file has ${fileSize} bytes; the file is truncated, download it again`,
  );
  return { name, dtype, shape: shape as number[], offset: dataStart + begin, byteLength: end - begin };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses a header without keeping the file open (for tools and sniffing). */
export function readSafetensorsHeaderOf(path: string): SafetensorsHeader {
  const fd = openForReading(path);
  try {
    return readSafetensorsHeader(fd, path);
  } finally {
    closeSync(fd);
  }
}
