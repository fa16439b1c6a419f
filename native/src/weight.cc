#include "weight.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "packed-tile.h"
#include "tile-file.h"



namespace tessera {

int blockElements(DType dtype) {
  switch (dtype) {
    case DType::Q8_0:
    case DType::Q4_0:
      return 32;
    case DType::Q4_K:
    case DType::Q6_K:
      return 256;
    default:
      return 1;
  }
}

int blockBytes(DType dtype) {
  switch (dtype) {
    case DType::F32: return 4;
    case DType::F16:
    case DType::BF16: return 2;
    case DType::Q8_0: return kQ8_0BlockBytes;
    case DType::Q4_0: return kQ4_0BlockBytes;
    case DType::Q4_K: return kQ4_KBlockBytes;
    case DType::Q6_K: return kQ6_KBlockBytes;
  }
  return 1;
}

NativeWeight::NativeWeight(DType dtype, int64_t rows, int64_t cols)
    : dtype_(dtype), rows_(rows), cols_(cols), rowBytes_(static_cast<size_t>(cols / blockElements(dtype)) * blockBytes(dtype)) {}

uint8_t* NativeWeight::allocate(size_t byteLength) {
  // Large weights go on 2 MiB pages where the kernel allows (THP "madvise"
  // mode): decode streams every byte once per token, and 4 KiB pages would
  // cost a TLB miss per page. Padding lets vector loads run past the end.
  constexpr size_t kHugePage = size_t(2) << 20;
  const size_t alignment = byteLength >= kHugePage ? kHugePage : 64;
  const size_t size = (byteLength + 64 + alignment - 1) / alignment * alignment;
  base_ = std::aligned_alloc(alignment, size);
  if (base_ == nullptr) throw std::runtime_error("out of memory for a weight of " + std::to_string(byteLength) + " bytes");
  if (alignment == kHugePage) ::madvise(base_, size, MADV_HUGEPAGE);
  length_ = size;
  return static_cast<uint8_t*>(base_);
}

size_t NativeWeight::tileBytes() const { return packedTileBytes(dtype_, cols_) * static_cast<size_t>((rows_ + 15) / 16); }

bool NativeWeight::mapSavedTiles(const std::string& tileFile) {
  const TileFileMapping mapping = mapTileFile(tileFile, dtype_, rows_, cols_, tileBytes());
  if (mapping.base == nullptr) return false;
  base_ = mapping.base;
  length_ = mapping.length;
  data_ = mapping.tiles;
  mapped_ = true;
  packed_ = true;
  return true;
}

void NativeWeight::packFrom(const uint8_t* stored, ThreadPool& pool) {
  const size_t bytes = tileBytes();
  uint8_t* tiles = allocate(bytes);
  std::memset(tiles + bytes, 0, length_ - bytes);
  packTiles(dtype_, stored, rowBytes_, rows_, cols_, tiles, pool);
  data_ = tiles;
  packed_ = true;
}

NativeWeight* NativeWeight::copy(DType dtype, int64_t rows, int64_t cols, const uint8_t* bytes, size_t byteLength, bool pack,
                                 ThreadPool& pool) {
  std::unique_ptr<NativeWeight> weight(new NativeWeight(dtype, rows, cols));
  if (pack && packable(dtype)) {
    weight->packFrom(bytes, pool);
    return weight.release();
  }
  uint8_t* copy = weight->allocate(byteLength);
  std::memcpy(copy, bytes, byteLength);
  std::memset(copy + byteLength, 0, weight->length_ - byteLength);
  weight->data_ = copy;
  return weight.release();
}

NativeWeight* NativeWeight::map(DType dtype, int64_t rows, int64_t cols, const std::string& path, uint64_t byteOffset, bool pack,
                                ThreadPool& pool, const std::string& tileFile) {
  NativeWeight* weight = new NativeWeight(dtype, rows, cols);
  const bool packs = pack && packable(dtype);
  if (packs && !tileFile.empty() && weight->mapSavedTiles(tileFile)) return weight;
  const size_t byteLength = weight->rowBytes_ * static_cast<size_t>(rows);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    delete weight;
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat info;
  if (::fstat(fd, &info) != 0 || static_cast<uint64_t>(info.st_size) < byteOffset + byteLength) {
    ::close(fd);
    delete weight;
    throw std::runtime_error(path + " is shorter than the tensor's byte range; the file may be truncated");
  }
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t start = byteOffset / page * page;
  const size_t length = static_cast<size_t>(byteOffset + byteLength - start);
  void* base = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE, fd, static_cast<off_t>(start));
  ::close(fd);
  if (base == MAP_FAILED) {
    delete weight;
    throw std::runtime_error("cannot map " + path + ": " + std::strerror(errno));
  }
  ::madvise(base, length, MADV_WILLNEED);
  const uint8_t* stored = static_cast<const uint8_t*>(base) + (byteOffset - start);
  if (packs) {
    // The tiles are private memory; the mapping was only the way in.
    try {
      weight->packFrom(stored, pool);
    } catch (...) {
      ::munmap(base, length);
      delete weight;
      throw;
    }
    ::munmap(base, length);
    // A failed save leaves no file; the caller sees that and says so.
    if (!tileFile.empty()) writeTileFile(tileFile, dtype, rows, cols, weight->data_, weight->tileBytes());
    return weight;
  }
  weight->base_ = base;
  weight->length_ = length;
  weight->mapped_ = true;
  weight->data_ = stored;
  return weight;
}

NativeWeight::~NativeWeight() {
  if (mapped_) {
    ::munmap(base_, length_);
  } else {
    std::free(base_);
  }
  std::free(floats_);
}

void NativeWeight::dequantizeRow(int64_t r, float* out) const {
  if (packed_) return unpackRow(dtype_, data_, cols_, r, out);
  // The portable variant: every variant dequantizes to the same values.
  kernelTableScalar()->dequantize(dtype_, row(r), cols_, out);
}

const float* NativeWeight::floats() const {
  if (floats_ == nullptr) {
    float* values = static_cast<float*>(std::malloc(static_cast<size_t>(rows_ * cols_) * sizeof(float) + 4));
    if (values == nullptr) throw std::runtime_error("out of memory expanding a weight to float32");
    for (int64_t r = 0; r < rows_; r++) dequantizeRow(r, values + r * cols_);
    floats_ = values;
  }
  return floats_;
}

}  // namespace tessera
