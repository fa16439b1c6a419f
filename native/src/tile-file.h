// A weight's packed tiles saved as a file, so a later load maps them from
// the page cache instead of repacking into fresh memory (which first-touches
// every page: about 2 s per GB in this VM) and processes on one host share
// them. Layout: a 4096-byte header (magic, format version, dtype, shape,
// tile bytes), the tiles, then 64 zero bytes for vector loads past the end.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "kernels/kernel-table.h"

namespace tessera {

/**
 * Bumped whenever the header changes. A change to packTiles' layout
 * (packed-tile.h) needs no bump: the header also carries a fingerprint of
 * the layout (tileLayoutFingerprint), so files from another layout are
 * refused instead of misread.
 */
constexpr uint32_t kTileFileVersion = 1;

/** A hash of what packTiles makes of fixed bytes for every packable dtype, computed once per process. */
uint64_t tileLayoutFingerprint();

/** Where a tile file's tiles start: page-aligned, so the mapping's data is too. */
constexpr size_t kTileFileHeaderBytes = 4096;

struct TileFileMapping {
  void* base = nullptr;  // what to unmap
  size_t length = 0;
  const uint8_t* tiles = nullptr;
};

/**
 * Maps the tile file at `path` when it exists and its header and size say it
 * holds `tileBytes` bytes of tiles of exactly this dtype and shape; otherwise
 * (missing, another version or shape, truncated) an empty mapping.
 */
TileFileMapping mapTileFile(const std::string& path, DType dtype, int64_t rows, int64_t cols, size_t tileBytes);

/**
 * Writes the tiles to `path` by way of a temporary file beside it, renamed
 * into place, so readers never see a partial file. False (and nothing left
 * behind) when it cannot be written.
 */
bool writeTileFile(const std::string& path, DType dtype, int64_t rows, int64_t cols, const uint8_t* tiles, size_t tileBytes);

}  // namespace tessera
