// A weight as the native backend keeps it: ggml's stored bytes, unchanged,
// either copied into 64-byte-aligned memory or memory-mapped from the model
// file (no copy; processes on one host share the page cache). The kernels
// read the stored block layout directly, so both paths run the same code.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include "kernels/kernel-table.h"

namespace tessera {

/** Elements per block and bytes per block of a dtype. */
int blockElements(DType dtype);
int blockBytes(DType dtype);

class NativeWeight {
 public:
  /** Copies `byteLength` bytes. */
  static NativeWeight* copy(DType dtype, int64_t rows, int64_t cols, const uint8_t* bytes, size_t byteLength);
  /** Maps bytes [byteOffset, byteOffset + rows·rowBytes) of a file (throws std::runtime_error). */
  static NativeWeight* map(DType dtype, int64_t rows, int64_t cols, const std::string& path, uint64_t byteOffset);
  ~NativeWeight();
  NativeWeight(const NativeWeight&) = delete;
  NativeWeight& operator=(const NativeWeight&) = delete;

  DType dtype() const { return dtype_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  size_t rowBytes() const { return rowBytes_; }
  const uint8_t* row(int64_t r) const { return data_ + static_cast<size_t>(r) * rowBytes_; }
  /** Bytes held on the heap (0 when mapped): what JS's GC is told about. */
  size_t ownedBytes() const { return mapped_ ? 0 : length_; }
  bool mapped() const { return mapped_; }

  /** Row r as float32 [cols] (exact for float types, ggml's dequantization otherwise). */
  void dequantizeRow(int64_t r, float* out) const;
  /** All values as float32 [rows·cols], made once (vectors: norm weights, biases). */
  const float* floats() const;

 private:
  NativeWeight(DType dtype, int64_t rows, int64_t cols);

  DType dtype_;
  int64_t rows_;
  int64_t cols_;
  size_t rowBytes_;
  const uint8_t* data_ = nullptr;
  void* base_ = nullptr;  // what to free or unmap
  size_t length_ = 0;
  bool mapped_ = false;
  mutable float* floats_ = nullptr;
};

}  // namespace tessera
