// A weight as the native backend keeps it: ggml's stored bytes, unchanged,
// either copied into aligned memory or memory-mapped from the model file (no
// copy; processes on one host share the page cache); or, for q8_0 and q4_0
// when asked, repacked into 16-row tiles (packed-tile.h) for the VNNI
// kernels. Both forms give the same bits; the tiles give faster decode.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "kernels/kernel-table.h"
#include "thread-pool.h"

namespace tessera {

/** Elements per block and bytes per block of a dtype. */
int blockElements(DType dtype);
int blockBytes(DType dtype);

class NativeWeight {
 public:
  /** Copies `byteLength` bytes, or packs them into tiles when `pack` and the dtype allows. */
  static NativeWeight* copy(DType dtype, int64_t rows, int64_t cols, const uint8_t* bytes, size_t byteLength, bool pack,
                            ThreadPool& pool);
  /**
   * Maps bytes [byteOffset, byteOffset + rows·rowBytes) of a file, or packs
   * them from the mapping when `pack` and the dtype allows (throws std::runtime_error).
   * With a `tileFile` path (tile-file.h), packed tiles are mapped from it when it
   * holds this weight's, and saved to it after packing otherwise (best effort).
   */
  static NativeWeight* map(DType dtype, int64_t rows, int64_t cols, const std::string& path, uint64_t byteOffset, bool pack,
                           ThreadPool& pool, const std::string& tileFile = std::string());
  ~NativeWeight();
  NativeWeight(const NativeWeight&) = delete;
  NativeWeight& operator=(const NativeWeight&) = delete;

  DType dtype() const { return dtype_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t rowBytes() const { return rowBytes_; }
  /** Stored row r; only when not packed. */
  const uint8_t* row(int64_t r) const { return data_ + static_cast<size_t>(r) * rowBytes_; }
  /** The 16-row tiles (packed-tile.h), or null when the weight keeps its stored layout. */
  const uint8_t* tiles() const { return packed_ ? data_ : nullptr; }
  /** Bytes held on the heap (0 when mapped): what JS's GC is told about. */
  size_t ownedBytes() const { return mapped_ ? 0 : length_; }
  bool mapped() const { return mapped_; }

  /** Row r as float32 [cols] (exact for float types, ggml's dequantization otherwise). */
  void dequantizeRow(int64_t r, float* out) const;
  /** All values as float32 [rows·cols], made once (vectors: norm weights, biases). */
  const float* floats() const;

 private:
  NativeWeight(DType dtype, int64_t rows, int64_t cols);
  /** Heap memory for `byteLength` bytes (huge pages when large); sets base_, length_. */
  uint8_t* allocate(size_t byteLength);
  void packFrom(const uint8_t* stored, ThreadPool& pool);
  /** Bytes of this weight's tiles. */
  size_t tileBytes() const;
  /** Maps tiles saved by an earlier load; false when the file does not hold this weight's. */
  bool mapSavedTiles(const std::string& tileFile);

  DType dtype_;
  int64_t rows_;
  int64_t cols_;
  size_t rowBytes_;
  const uint8_t* data_ = nullptr;
  void* base_ = nullptr;  // what to free or unmap
  size_t length_ = 0;
  bool mapped_ = false;
  bool packed_ = false;
  mutable float* floats_ = nullptr;
};

}  // namespace tessera
