// A float exp written with plain adds and multiplies so the compiler
// vectorizes the loops that call it; every ISA variant computes the same bits
// (contraction is off, see binding.gyp). Error about 2 ulp; exact 0 below
// exp(-87.3), saturating at exp(88) above (callers only use it for softmax
// weights, which are ≤ 1, and for SiLU, where large inputs make it moot).
#pragma once
#include "isa.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

inline float expFloat(float x) {
  const float clamped = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln 2) by the 1.5·2^23 trick (round half to even).
  const float magic = 12582912.0f;
  const float n = (clamped * 1.44269504088896341f + magic) - magic;
  // r = x - n·ln 2 in two parts (Cody-Waite), |r| ≤ ln(2)/2.
  const float r = (clamped - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float twoToN;
  std::memcpy(&twoToN, &bits, 4);
  const float result = y * twoToN;
  return x < -87.3f ? 0.0f : result;
}

}  // namespace
}  // namespace TESSERA_ISA_NS
}  // namespace tessera
