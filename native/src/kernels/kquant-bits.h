// Bit fields of ggml's K-quant blocks, read the same way by the packer
// (packed-tile.cc) and by every ISA variant's kernels. Internal linkage:
// each variant compiles its own copy, so the linker never hands an
// AVX-512 build of these to a portable caller.
#pragma once
#include <cstdint>

namespace tessera {
namespace {

/** ggml's get_scale_min_k4: the 6-bit scale and min of sub-block j from a q4_k block's 12 packed bytes. */
[[maybe_unused]] inline void scaleMinK4(int j, const uint8_t* packed, int32_t* scale, int32_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
    *min = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
  }
}

/**
 * The unsigned 6-bit q6_k value of quarter `quarter` (0..3) of a run of 32
 * from its low-nibble byte (quarters 0 and 2), high-nibble byte (1 and 3)
 * and qh byte (2 bits per quarter), as a q6_k tile lays them side by side.
 */
[[maybe_unused]] inline int q6TileValue(uint8_t low, uint8_t high, uint8_t bits, int quarter) {
  const uint8_t ql = quarter % 2 == 0 ? low : high;
  const int nibble = quarter < 2 ? (ql & 0x0f) : (ql >> 4);
  return nibble | (((bits >> (2 * quarter)) & 3) << 4);
}

}  // namespace
}  // namespace tessera
