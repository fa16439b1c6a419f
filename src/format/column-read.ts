/**
 * Reading a column slice of a tensor: columns [colStart, colEnd) of every row
 * of the tensor seen as a matrix. Within a row the slice is one contiguous
 * byte range (quant blocks run along the row), so a row-parallel shard reads
 * exactly its own bytes, one range per row.
 */
import { readSync } from 'node:fs';
import { DTYPE_LAYOUTS, byteSize } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape, type TensorInfo } from './tensor-store.js';
import { sliceBytes } from './slice-bytes.js';

/**
 * Bytes of columns [colStart, colEnd) of each row, rows laid end to end:
 * [rows, colEnd - colStart] in the stored type. `tensorOffset` is the file
 * offset of the tensor's first byte.
 */
export function readColumnSlice(fd: number, path: string, tensorOffset: number, info: TensorInfo, colStart: number, colEnd: number): Uint8Array {
  const { rows, cols } = matrixShape(info.shape);
  const length = checkedSliceBytes(info, cols, colStart, colEnd);
  const out = sliceBytes(rows * length);
  readColumnSliceInto(fd, path, tensorOffset, info, colStart, colEnd, out, length, 0);
  return out;
}

/** readColumnSlice into `target`: row r's slice goes to targetOffset + r * targetRowBytes. */
export function readColumnSliceInto(fd: number, path: string, tensorOffset: number, info: TensorInfo, colStart: number, colEnd: number, target: Uint8Array, targetRowBytes: number, targetOffset: number): void {
  const { rows, cols } = matrixShape(info.shape);
  const length = checkedSliceBytes(info, cols, colStart, colEnd);
  if (targetRowBytes < length || targetOffset < 0 || targetOffset + (rows - 1) * targetRowBytes + length > target.byteLength) {
    throw new TesseraError('TESSERA_ERR_INTERNAL', `a ${rows}-row column slice of ${info.name} does not fit its target (${target.byteLength} bytes, row stride ${targetRowBytes}, offset ${targetOffset})`);
  }
  const rowBytes = byteSize(info.dtype, cols);
  const skip = byteSize(info.dtype, colStart);
  for (let row = 0; row < rows; row++) readInto(fd, path, target, targetOffset + row * targetRowBytes, length, tensorOffset + row * rowBytes + skip);
}

/** Stored bytes of columns [colStart, colEnd) of one row, after checking they are inside it and on block boundaries. */
function checkedSliceBytes(info: TensorInfo, cols: number, colStart: number, colEnd: number): number {
  const block = DTYPE_LAYOUTS[info.dtype].blockSize;
  if (!(Number.isInteger(colStart) && Number.isInteger(colEnd) && 0 <= colStart && colStart < colEnd && colEnd <= cols)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `columns [${colStart}, ${colEnd}) are outside tensor ${info.name}, whose rows have ${cols} columns`);
  }
  if (colStart % block !== 0 || (colEnd % block !== 0 && colEnd !== cols)) {
    throw new TesseraError(
      'TESSERA_ERR_SHARD_CONSTRAINT',
      `columns [${colStart}, ${colEnd}) of ${info.name} cut through ${block}-element ${info.dtype} blocks; a column shard must start and end on a block boundary`,
    );
  }
  return byteSize(info.dtype, colEnd - colStart);
}

function readInto(fd: number, path: string, out: Uint8Array, at: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, at + done, length - done, position + done);
    if (n === 0) throw new TesseraError('TESSERA_ERR_TRUNCATED', `${path} ends before byte ${position + length}; the file is truncated, download it again`);
    done += n;
  }
}
