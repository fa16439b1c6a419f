// q8_0 and q4_0 weights repacked into tiles of 16 rows, the layout the VNNI
// kernels read directly (kernels/matmul-tile.cc): per tile and block,
//   quants: groups g of 16 lanes × 4 bytes, lane r holding 4 bytes of row r
//     q8_0: 8 groups, bytes q[4g..4g+3] of the block as unsigned q + 128
//     q4_0: 4 groups, bytes qs[4g..4g+3] (low nibbles: elements 4g.., high: 16+4g..)
//   then the 16 rows' f16 scales.
// That is 16 × the stored block size per tile-block, so a packed weight takes
// the same memory as the file's; rows past the end of the weight are zero.
#pragma once
#include <cstddef>
#include <cstdint>
#include "kernels/kernel-table.h"
#include "thread-pool.h"

namespace tessera {

bool packable(DType dtype);

/** Bytes of one tile of `numBlocks` blocks per row. */
size_t packedTileBytes(DType dtype, int numBlocks);

/** Rows [numRows] of stored blocks (rowBytes apart) → ceil(numRows / 16) tiles at out. */
void packTiles(DType dtype, const uint8_t* rows, size_t rowBytes, int64_t numRows, int numBlocks, uint8_t* out,
               ThreadPool& pool);

/** Row `row` of packed tiles → float32 [numBlocks · 32], with ggml's dequantization arithmetic. */
void unpackRow(DType dtype, const uint8_t* tiles, int numBlocks, int64_t row, float* out);

}  // namespace tessera
