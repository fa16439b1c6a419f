#include "packed-tile.h"
#include "half-bits.h"

#include <cstring>

namespace tessera {
namespace {

float halfToFloat(uint16_t h) { return halfBitsToFloat(h); }

int groups(DType dtype) { return dtype == DType::Q8_0 ? 8 : 4; }
bool isFloat(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }
size_t elementBytes(DType dtype) { return dtype == DType::F32 ? 4 : 2; }
size_t storedBlockBytes(DType dtype) { return dtype == DType::Q8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes; }

}  // namespace

// f32 stays in rows: its tiles (2 KiB per leaf) decoded slower than the row kernel (measured).
bool packable(DType dtype) {
  return dtype == DType::Q8_0 || dtype == DType::Q4_0 || dtype == DType::F16 || dtype == DType::BF16;
}

int packedUnits(DType dtype, int64_t cols) { return static_cast<int>((cols + 31) / 32); }

size_t packedTileBytes(DType dtype, int64_t cols) {
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
        out[k] = halfToFloat(static_cast<uint16_t>(bits));
      } else {
        if (dtype == DType::BF16) bits <<= 16;
        std::memcpy(&out[k], &bits, 4);
      }
    }
    return;
  }
  const int numBlocks = packedUnits(dtype, cols);
  const size_t blockBytes = 16 * storedBlockBytes(dtype);
  const int g = groups(dtype);
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * blockBytes;
    uint16_t half;
    std::memcpy(&half, block + 64 * g + 2 * lane, 2);
    const float d = halfToFloat(half);
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
