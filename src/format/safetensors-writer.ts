/**
 * Writes a safetensors file tensor by tensor, so a model larger than memory
 * can be written: offsets follow from the shapes, so the header goes first
 * and each tensor's bytes are produced only when it is its turn.
 */
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { byteSize } from '../core/dtype.js';
import { check } from '../core/errors.js';

export interface SafetensorsTensorSource {
  /** Name as it goes into the file (HF names for an HF directory). */
  name: string;
  dtype: 'f32' | 'f16' | 'bf16';
  /** Row-major, outermost first. */
  shape: number[];
  /** Called once, when this tensor is written; must return exactly the tensor's bytes. */
  data: () => Uint8Array;
}

const FILE_DTYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;

/** Header bytes: JSON padded with spaces so the data starts 8-byte aligned. */
export function safetensorsHeaderBytes(tensors: readonly SafetensorsTensorSource[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    check(tensor.name !== '__metadata__' && !(tensor.name in header), 'TESSERA_ERR_INVALID_ARGUMENT', `tensor name ${tensor.name} is used twice or reserved`);
    check(
      tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0),
      'TESSERA_ERR_INVALID_ARGUMENT',
      `tensor ${tensor.name} has an invalid shape [${tensor.shape.join(', ')}]`,
    );
    const length = tensorByteLength(tensor);
    header[tensor.name] = { dtype: FILE_DTYPES[tensor.dtype], shape: tensor.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  const json = JSON.stringify(header);
  const padded = json + ' '.repeat((8 - (Buffer.byteLength(json, 'utf8') % 8)) % 8);
  const bytes = Buffer.alloc(8 + Buffer.byteLength(padded, 'utf8'));
  bytes.writeBigUInt64LE(BigInt(bytes.length - 8), 0);
  bytes.write(padded, 8, 'utf8');
  return bytes;
}

function tensorByteLength(tensor: SafetensorsTensorSource): number {
  return byteSize(tensor.dtype, tensor.shape.reduce((a, b) => a * b, 1));
}

/** Writes `tensors` (in this order) to a new safetensors file at `path`; a failed write leaves no file. */
export function writeSafetensors(path: string, tensors: SafetensorsTensorSource[], metadata?: Record<string, string>): void {
  const header = safetensorsHeaderBytes(tensors, metadata);
  const fd = openSync(path, 'w');
  try {
    writeAll(fd, header);
    for (const tensor of tensors) {
      const data = tensor.data();
      const expected = tensorByteLength(tensor);
      check(
        data.byteLength === expected,
        'TESSERA_ERR_INVALID_ARGUMENT',
        `tensor ${tensor.name} produced ${data.byteLength} bytes but its shape [${tensor.shape.join(', ')}] of ${tensor.dtype} needs ${expected}`,
      );
      writeAll(fd, data);
    }
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw error;
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.byteLength) done += writeSync(fd, data, done, data.byteLength - done);
}
