// IEEE half bits ↔ float, portable. Half → float is exact; float → half
// rounds to nearest even, bit for bit what F16C's cvtps_ph does with
// _MM_FROUND_TO_NEAREST_INT (and ggml's GGML_FP32_TO_FP16): subnormal halves
// kept, overflow to infinity, NaN stays NaN with its quiet bit set. `static` on purpose: every
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

static inline uint16_t floatToHalfBits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t exponent = (x >> 23) & 0xff;
  const uint32_t mantissa = x & 0x7fffff;
  if (exponent == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >> 13) : 0));
  const int halfExponent = static_cast<int>(exponent) - 112;  // rebias 127 → 15
  if (halfExponent >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  uint32_t bits, rest, half;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): the significand with its implicit 1, shifted into place.
    const int shift = 14 - halfExponent;
    if (shift > 24) return static_cast<uint16_t>(sign);
    const uint32_t significand = mantissa | 0x800000;
    bits = significand >> shift;
    rest = significand & ((1u << shift) - 1);
    half = 1u << (shift - 1);
  } else {
    bits = (static_cast<uint32_t>(halfExponent) << 10) | (mantissa >> 13);
    rest = mantissa & 0x1fff;
    half = 0x1000;
  }
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return static_cast<uint16_t>(sign | (rest > half || (rest == half && (bits & 1) != 0) ? bits + 1 : bits));
}

}  // namespace tessera
