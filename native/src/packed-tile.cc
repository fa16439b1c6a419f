#include "packed-tile.h"
#include "half-bits.h"
#include "kernels/kquant-bits.h"

#include <cstring>

namespace tessera {
namespace {

/** The IEEE half stored (unaligned) at p, as float. */
float halfAt(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return halfBitsToFloat(bits);
}

int groups(DType dtype) { return dtype == DType::Q8_0 ? 8 : 4; }
bool isFloat(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }
size_t elementBytes(DType dtype) { return dtype == DType::F32 ? 4 : 2; }
size_t storedBlockBytes(DType dtype) { return dtype == DType::Q8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes; }

bool isKQuant(DType dtype) { return dtype == DType::Q4_K || dtype == DType::Q6_K; }

}  // namespace

// f32 stays in rows: its tiles (2 KiB per leaf) decoded slower than the row kernel (measured).
bool packable(DType dtype) {
  return dtype == DType::Q8_0 || dtype == DType::Q4_0 || dtype == DType::Q4_K || dtype == DType::Q6_K || dtype == DType::F16 ||
         dtype == DType::BF16;
}

int packedUnits(DType dtype, int64_t cols) { return static_cast<int>(isKQuant(dtype) ? cols / 256 : (cols + 31) / 32); }

size_t packedTileBytes(DType dtype, int64_t cols) {
  if (dtype == DType::Q4_K) return static_cast<size_t>(packedUnits(dtype, cols)) * kQ4_KTileBlockBytes;
  if (dtype == DType::Q6_K) return static_cast<size_t>(packedUnits(dtype, cols)) * kQ6_KTileBlockBytes;
  const size_t unitBytes = isFloat(dtype) ? 32 * 16 * elementBytes(dtype) : 16 * storedBlockBytes(dtype);
  return static_cast<size_t>(packedUnits(dtype, cols)) * unitBytes;
}

namespace {

/** Float rows → tiles: element k of lane r at element (k·16 + r) of the tile. */
void packFloatTile(size_t size, const uint8_t* rows, size_t rowBytes, int64_t numRows, int64_t cols, int64_t tile,
                   uint8_t* tileOut) {
  for (int lane = 0; lane < 16; lane++) {
    const int64_t r = tile * 16 + lane;
    if (r >= numRows) break;
    const uint8_t* row = rows + static_cast<size_t>(r) * rowBytes;
    for (int64_t k = 0; k < cols; k++) std::memcpy(tileOut + (k * 16 + lane) * size, row + size * k, size);
  }
}

/** Row `lane`'s q4_k super-blocks → its lane of each tile block. */
void packQ4_KLane(const uint8_t* row, int numBlocks, int lane, uint8_t* tileOut) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = row + static_cast<size_t>(b) * kQ4_KBlockBytes;
    uint8_t* out = tileOut + static_cast<size_t>(b) * kQ4_KTileBlockBytes;
    for (int group = 0; group < 32; group++) std::memcpy(out + 64 * group + 4 * lane, block + 16 + 4 * group, 4);
    for (int sub = 0; sub < 8; sub++) {
      int32_t scale, min;
      scaleMinK4(sub, block + 4, &scale, &min);
      out[kQ4_KTileScalesAt + 16 * sub + lane] = static_cast<uint8_t>(scale);
      out[kQ4_KTileMinsAt + 16 * sub + lane] = static_cast<uint8_t>(min);
    }
    std::memcpy(out + kQ4_KTileDAt + 2 * lane, block, 2);
    std::memcpy(out + kQ4_KTileDminAt + 2 * lane, block + 2, 2);
  }
}

/** Lane `lane` of a q4_k tile → float32 [numBlocks · 256], ggml's dequantize_row_q4_K arithmetic. */
void unpackQ4_KLane(const uint8_t* tile, int numBlocks, int lane, float* y) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * kQ4_KTileBlockBytes;
    const float d = halfAt(block + kQ4_KTileDAt + 2 * lane);
    const float dmin = halfAt(block + kQ4_KTileDminAt + 2 * lane);
    for (int sub = 0; sub < 8; sub++) {
      const float scale = d * block[kQ4_KTileScalesAt + 16 * sub + lane];
      const float min = dmin * block[kQ4_KTileMinsAt + 16 * sub + lane];
      const int shift = 4 * (sub % 2);
      for (int l = 0; l < 32; l++) {
        const uint8_t byte = block[64 * (8 * (sub / 2) + l / 4) + 4 * lane + l % 4];
        *y++ = scale * ((byte >> shift) & 0x0f) - min;
      }
    }
  }
}


/** Row `lane`'s q6_k super-blocks → its lane of each tile block. */
void packQ6_KLane(const uint8_t* row, int numBlocks, int lane, uint8_t* tileOut) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = row + static_cast<size_t>(b) * kQ6_KBlockBytes;
    uint8_t* out = tileOut + static_cast<size_t>(b) * kQ6_KTileBlockBytes;
    for (int n = 0; n < 2; n++) {
      for (int g = 0; g < 8; g++) {
        uint8_t* group = out + 64 * 3 * (8 * n + g) + 4 * lane;
        std::memcpy(group, block + 64 * n + 4 * g, 4);
        std::memcpy(group + 64, block + 64 * n + 32 + 4 * g, 4);
        std::memcpy(group + 128, block + 128 + 32 * n + 4 * g, 4);
      }
    }
    for (int sub = 0; sub < 16; sub++) out[kQ6_KTileScalesAt + 16 * sub + lane] = block[192 + sub];
    std::memcpy(out + kQ6_KTileDAt + 2 * lane, block + 208, 2);
  }
}

/** Lane `lane` of a q6_k tile → float32 [numBlocks · 256], ggml's dequantize_row_q6_K arithmetic. */
void unpackQ6_KLane(const uint8_t* tile, int numBlocks, int lane, float* y) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * kQ6_KTileBlockBytes;
    const float d = halfAt(block + kQ6_KTileDAt + 2 * lane);
    for (int e = 0; e < 256; e++) {
      const int n = e / 128, quarter = (e % 128) / 32, l = e % 32;
      const uint8_t* group = block + 64 * 3 * (8 * n + l / 4) + 4 * lane + l % 4;
      const int q = q6TileValue(group[0], group[64], group[128], quarter) - 32;
      const int8_t scale = static_cast<int8_t>(block[kQ6_KTileScalesAt + 16 * (e / 16) + lane]);
      y[256 * b + e] = d * scale * q;
    }
  }
}

}  // namespace

void packTiles(DType dtype, const uint8_t* rows, size_t rowBytes, int64_t numRows, int64_t cols, uint8_t* out,
               ThreadPool& pool) {
  const int64_t tiles = (numRows + 15) / 16;
  const size_t tileBytes = packedTileBytes(dtype, cols);
  const int numBlocks = packedUnits(dtype, cols);
  const size_t blockBytes = 16 * storedBlockBytes(dtype);
  const int g = groups(dtype);
  const uint32_t flip = dtype == DType::Q8_0 ? 0x80808080u : 0u;
  pool.run(static_cast<int>(tiles), [&](int tile) {
    uint8_t* tileOut = out + static_cast<size_t>(tile) * tileBytes;
    std::memset(tileOut, 0, tileBytes);
    if (isFloat(dtype)) return packFloatTile(elementBytes(dtype), rows, rowBytes, numRows, cols, tile, tileOut);
    if (isKQuant(dtype)) {
      for (int lane = 0; lane < 16 && tile * 16 + lane < numRows; lane++) {
        const uint8_t* row = rows + static_cast<size_t>(tile * 16 + lane) * rowBytes;
        if (dtype == DType::Q4_K) {
          packQ4_KLane(row, numBlocks, lane, tileOut);
        } else {
          packQ6_KLane(row, numBlocks, lane, tileOut);
        }
      }
      return;
    }
    for (int lane = 0; lane < 16; lane++) {
      const int64_t r = static_cast<int64_t>(tile) * 16 + lane;
      if (r >= numRows) break;
      const uint8_t* row = rows + static_cast<size_t>(r) * rowBytes;
      for (int b = 0; b < numBlocks; b++) {
        const uint8_t* block = row + static_cast<size_t>(b) * storedBlockBytes(dtype);
        uint8_t* blockOut = tileOut + static_cast<size_t>(b) * blockBytes;
        for (int group = 0; group < g; group++) {
          uint32_t four;
          std::memcpy(&four, block + 2 + 4 * group, 4);
          four ^= flip;
          std::memcpy(blockOut + 64 * group + 4 * lane, &four, 4);
        }
        std::memcpy(blockOut + 64 * g + 2 * lane, block, 2);
      }
    }
  });
}

void unpackRow(DType dtype, const uint8_t* tiles, int64_t cols, int64_t row, float* out) {
  const uint8_t* tile = tiles + static_cast<size_t>(row / 16) * packedTileBytes(dtype, cols);
  const int lane = static_cast<int>(row % 16);
  if (isFloat(dtype)) {
    const size_t size = elementBytes(dtype);
    for (int64_t k = 0; k < cols; k++) {
      const uint8_t* element = tile + (k * 16 + lane) * size;
      uint32_t bits = 0;
      std::memcpy(&bits, element, size);
      if (dtype == DType::F16) {
        out[k] = halfBitsToFloat(static_cast<uint16_t>(bits));
      } else {
        if (dtype == DType::BF16) bits <<= 16;
        std::memcpy(&out[k], &bits, 4);
      }
    }
    return;
  }
  const int numBlocks = packedUnits(dtype, cols);
  if (dtype == DType::Q4_K) return unpackQ4_KLane(tile, numBlocks, lane, out);
  if (dtype == DType::Q6_K) return unpackQ6_KLane(tile, numBlocks, lane, out);
  const size_t blockBytes = 16 * storedBlockBytes(dtype);
  const int g = groups(dtype);
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * blockBytes;
    const float d = halfAt(block + 64 * g + 2 * lane);
    float* y = out + 32 * b;
    for (int group = 0; group < g; group++) {
      for (int i = 0; i < 4; i++) {
        const uint8_t byte = block[64 * group + 4 * lane + i];
        if (dtype == DType::Q8_0) {
          y[4 * group + i] = static_cast<int8_t>(byte ^ 0x80) * d;
        } else {
          y[4 * group + i] = ((byte & 0x0f) - 8) * d;
          y[16 + 4 * group + i] = ((byte >> 4) - 8) * d;
        }
      }
    }
  }
}

}  // namespace tessera
