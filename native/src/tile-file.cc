#include "tile-file.h"

#include <cstdio>
#include <cstring>
#include <vector>

#include "packed-tile.h"
#include "thread-pool.h"
#include "weight.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tessera {
namespace {

constexpr char kMagic[16] = "TESSERA-TILES\n";
constexpr size_t kPaddingBytes = 64;

struct TileFileHeader {
  char magic[16];
  uint32_t version;
  uint32_t dtype;
  int64_t rows;
  int64_t cols;
  uint64_t tileBytes;
  uint64_t layout;
};

/** FNV-1a, 64 bits. */
uint64_t hashBytes(uint64_t hash, const uint8_t* bytes, size_t length) {
  for (size_t i = 0; i < length; i++) hash = (hash ^ bytes[i]) * 0x100000001b3ull;
  return hash;
}

uint64_t computeLayoutFingerprint() {
  ThreadPool pool(1);
  uint64_t hash = 0xcbf29ce484222325ull;
  const int64_t rows = 17, cols = 512;
  for (DType dtype : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K, DType::F16, DType::BF16}) {
    if (!packable(dtype)) continue;
    const size_t rowBytes = static_cast<size_t>(cols / blockElements(dtype)) * blockBytes(dtype);
    std::vector<uint8_t> stored(rowBytes * rows);
    uint32_t state = 12345u + static_cast<uint32_t>(dtype);
    for (uint8_t& byte : stored) byte = static_cast<uint8_t>((state = state * 1664525u + 1013904223u) >> 24);
    std::vector<uint8_t> tiles(packedTileBytes(dtype, cols) * ((rows + 15) / 16));
    packTiles(dtype, stored.data(), rowBytes, rows, cols, tiles.data(), pool);
    hash = hashBytes(hash, tiles.data(), tiles.size());
  }
  return hash;
}

TileFileHeader headerOf(DType dtype, int64_t rows, int64_t cols, size_t tileBytes) {
  TileFileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof(kMagic));
  header.version = kTileFileVersion;
  header.layout = tileLayoutFingerprint();
  header.dtype = static_cast<uint32_t>(dtype);
  header.rows = rows;
  header.cols = cols;
  header.tileBytes = tileBytes;
  return header;
}

bool writeAll(int fd, const uint8_t* bytes, size_t length) {
  while (length > 0) {
    const ssize_t written = ::write(fd, bytes, length);
    if (written <= 0) return false;
    bytes += written;
    length -= static_cast<size_t>(written);
  }
  return true;
}

}  // namespace

uint64_t tileLayoutFingerprint() {
  static const uint64_t fingerprint = computeLayoutFingerprint();
  return fingerprint;
}

TileFileMapping mapTileFile(const std::string& path, DType dtype, int64_t rows, int64_t cols, size_t tileBytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  struct stat info;
  TileFileHeader header{};
  const TileFileHeader expected = headerOf(dtype, rows, cols, tileBytes);
  const size_t length = kTileFileHeaderBytes + tileBytes + kPaddingBytes;
  const bool matches = ::fstat(fd, &info) == 0 && static_cast<size_t>(info.st_size) == length &&
                       ::pread(fd, &header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header)) &&
                       std::memcmp(&header, &expected, sizeof(header)) == 0;
  void* base = matches ? ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (base == MAP_FAILED) return {};
  ::madvise(base, length, MADV_WILLNEED);
  return {base, length, static_cast<const uint8_t*>(base) + kTileFileHeaderBytes};
}

bool writeTileFile(const std::string& path, DType dtype, int64_t rows, int64_t cols, const uint8_t* tiles, size_t tileBytes) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::vector<uint8_t> head(kTileFileHeaderBytes, 0);
  const TileFileHeader header = headerOf(dtype, rows, cols, tileBytes);
  std::memcpy(head.data(), &header, sizeof(header));
  const std::vector<uint8_t> padding(kPaddingBytes, 0);
  const bool written = writeAll(fd, head.data(), head.size()) && writeAll(fd, tiles, tileBytes) &&
                       writeAll(fd, padding.data(), padding.size());
  const bool closed = ::close(fd) == 0;
  if (!written || !closed || std::rename(temporary.c_str(), path.c_str()) != 0) {
    ::unlink(temporary.c_str());
    return false;
  }
  return true;
}

}  // namespace tessera
