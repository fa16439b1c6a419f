// Included first by every kernel source. Says which instruction set this
// compilation targets (from the compiler flags binding.gyp gives each
// variant) and holds small helpers with internal linkage only, so variants
// built with different flags can never share a symbol.
#pragma once
#include <cstdint>
#include <cstring>
#include "kernel-table.h"
#include "../half-bits.h"

#ifndef TESSERA_ISA_NS
#error "kernel sources are compiled once per ISA; binding.gyp defines TESSERA_ISA_NS"
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__FMA__) && defined(__F16C__)
#define TESSERA_AVX512 1
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define TESSERA_AVX2 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define TESSERA_NEON 1
#endif
#if defined(TESSERA_AVX2) || defined(TESSERA_AVX512)
#include <immintrin.h>
#endif
#if defined(TESSERA_NEON)
#include <arm_neon.h>
#endif

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

/** IEEE half bits → float, exact (portable; vector paths use F16C/NEON instead). */
inline float halfToFloat(uint16_t h) { return halfBitsToFloat(h); }

inline float bf16ToFloat(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t loadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace
}  // namespace TESSERA_ISA_NS
}  // namespace tessera
