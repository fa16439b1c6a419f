// q8_0, q4_0, q4_k and q6_k weights repacked into tiles of 16 rows, the layout the VNNI
// kernels read directly (kernels/matmul-tile.cc): per tile and block,
//   quants: groups g of 16 lanes × 4 bytes, lane r holding 4 bytes of row r
//     q8_0: 8 groups, bytes q[4g..4g+3] of the block as unsigned q + 128
//     q4_0: 4 groups, bytes qs[4g..4g+3] (low nibbles: elements 4g.., high: 16+4g..)
//   then the 16 rows' f16 scales.
// That is 16 × the stored block size per tile-block, so a packed weight takes
// the same memory as the file's; rows past the end of the weight are zero.
//
// q4_k: per tile and super-block of 256 (kQ4_KTileBlockBytes, 2.8% more
// than 16 stored blocks): quants as 32 groups of 16 lanes × 4 bytes (group
// 8c + g holds bytes qs[32c + 4g..] of each row: low nibbles are sub-block
// 2c, high nibbles 2c + 1), then the 6-bit scales and mins unpacked to one
// byte per (sub-block, lane), then the rows' f16 d and dmin.
// q6_k (exactly 16 stored blocks): per half n and group g, 64-byte groups of
// ql[64n + 4g..], ql[64n + 32 + 4g..] and qh[32n + 4g..] of each row, then the
// int8 scales per (sub-block, lane), then the rows' f16 d.
//
// f32/f16/bf16 weights: per tile and 32-element leaf, element k of the 16
// rows as 16 consecutive values, k = 0..31; past the row's end, zeros.
#pragma once
#include <cstddef>
#include <cstdint>
#include "kernels/kernel-table.h"
#include "thread-pool.h"

namespace tessera {

bool packable(DType dtype);

/** Units a row is packed in: q8_0/q4_0 blocks, or float leaves of 32 (the last zero-padded). */
int packedUnits(DType dtype, int64_t cols);

/** Bytes of one tile of rows of `cols` elements. */
size_t packedTileBytes(DType dtype, int64_t cols);

/** Rows [numRows] of stored bytes (rowBytes apart) → ceil(numRows / 16) tiles at out. */
void packTiles(DType dtype, const uint8_t* rows, size_t rowBytes, int64_t numRows, int64_t cols, uint8_t* out,
               ThreadPool& pool);

/** Row `row` of packed tiles → float32 [cols] (ggml's dequantization arithmetic for q8_0/q4_0). */
void unpackRow(DType dtype, const uint8_t* tiles, int64_t cols, int64_t row, float* out);

}  // namespace tessera
