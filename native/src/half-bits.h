// IEEE half bits → float, exact and portable. `static` on purpose: every
// translation unit (each compiled for its own ISA) keeps its own copy, so the
// linker never merges an AVX-512 build of it into the portable kernels.
#pragma once

#include <cstdint>
#include <cstring>

namespace tessera {

static inline float halfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalize into a float exponent.
    int shift = 0;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      shift++;
    }
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace tessera
