/**
 * Decoding stored tensor bytes to float32 values, through core/quant so the
 * reference backend and the format readers agree on every block layout.
 */
import { byteSize, type DType } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import { dequantize } from '../../core/quant.js';

/** `elements` consecutive values of a tensor of `dtype` stored in `bytes`. */
export function decodeValues(dtype: DType, bytes: Uint8Array, elements: number): Float32Array {
  check(
    bytes.byteLength === byteSize(dtype, elements),
    'TESSERA_ERR_TRUNCATED',
    `a ${dtype} tensor of ${elements} elements needs ${byteSize(dtype, elements)} bytes but got ${bytes.byteLength}; the model file may be truncated or corrupt`,
  );
  return dequantize(dtype, bytes, elements);
}
