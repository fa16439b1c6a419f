// Stored blocks → float32 with ggml's arithmetic (dequantize_row_*), for
// readRows, embedding lookups and the float-activation matmul path. Only
// multiplies and subtracts, so every ISA variant gives the same values.
#include "kernel-functions.h"
#include "kquant-bits.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

void q8_0(const uint8_t* block, float* y) {
  const float d = halfToFloat(loadU16(block));
  const int8_t* q = reinterpret_cast<const int8_t*>(block + 2);
  for (int i = 0; i < 32; i++) y[i] = q[i] * d;
}

void q4_0(const uint8_t* block, float* y) {
  const float d = halfToFloat(loadU16(block));
  const uint8_t* qs = block + 2;
  for (int i = 0; i < 16; i++) {
    y[i] = ((qs[i] & 0x0f) - 8) * d;
    y[i + 16] = ((qs[i] >> 4) - 8) * d;
  }
}

void q4_K(const uint8_t* block, float* y) {
  const float d = halfToFloat(loadU16(block));
  const float dmin = halfToFloat(loadU16(block + 2));
  const uint8_t* scales = block + 4;
  const uint8_t* q = block + 16;
  for (int j = 0; j < 8; j += 2) {
    int32_t sc, m;
    scaleMinK4(j, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scaleMinK4(j + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0x0f) - m1;
    for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
    q += 32;
  }
}

void q6_K(const uint8_t* block, float* y) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(block + 192);
  const float d = halfToFloat(loadU16(block + 208));
  for (int n = 0; n < 2; n++) {
    for (int l = 0; l < 32; l++) {
      const int is = l / 16;
      const int q1 = static_cast<int8_t>((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = static_cast<int8_t>((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * sc[is] * q1;
      y[l + 32] = d * sc[is + 2] * q2;
      y[l + 64] = d * sc[is + 4] * q3;
      y[l + 96] = d * sc[is + 6] * q4;
    }
    y += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

}  // namespace

void dequantize(DType dtype, const uint8_t* bytes, int64_t count, float* out) {
  switch (dtype) {
    case DType::F32:
      std::memcpy(out, bytes, static_cast<size_t>(count) * 4);
      return;
    case DType::F16:
      for (int64_t i = 0; i < count; i++) out[i] = halfToFloat(loadU16(bytes + 2 * i));
      return;
    case DType::BF16:
      for (int64_t i = 0; i < count; i++) out[i] = bf16ToFloat(loadU16(bytes + 2 * i));
      return;
    case DType::Q8_0:
      for (int64_t b = 0; b < count / 32; b++) q8_0(bytes + b * 34, out + b * 32);
      return;
    case DType::Q4_0:
      for (int64_t b = 0; b < count / 32; b++) q4_0(bytes + b * 18, out + b * 32);
      return;
    case DType::Q4_K:
      for (int64_t b = 0; b < count / 256; b++) q4_K(bytes + b * 144, out + b * 256);
      return;
    case DType::Q6_K:
      for (int64_t b = 0; b < count / 256; b++) q6_K(bytes + b * 210, out + b * 256);
      return;
  }
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
