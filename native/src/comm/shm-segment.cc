#include "shm-segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <new>

#include "wait.h"

namespace tessera::comm {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t roundUp(uint64_t value, uint64_t to) { return (value + to - 1) / to * to; }

[[noreturn]] void fail(const std::string& what) {
  throw CommError("TESSERA_ERR_INVALID_ARGUMENT", what + ": " + std::strerror(errno));
}

std::shared_ptr<Mapping> mapFile(int fd, size_t bytes, const std::string& path) {
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (base == MAP_FAILED) fail("cannot map the shared-memory segment " + path);
  return std::make_shared<Mapping>(base, bytes);
}

/**
 * Faults every page of a fresh mapping in now, with a write so the page
 * table entry is writable: a first touch costs microseconds per page on some
 * virtual machines, which would otherwise land in the first collectives and
 * streams (MAP_POPULATE and MADV_POPULATE_WRITE did not avoid it there). An
 * atomic add of 0 changes no byte, so a peer's segment may be live already.
 */
void touchPages(uint8_t* base, size_t bytes) {
  for (size_t at = 0; at < bytes; at += kPage) __atomic_fetch_add(base + at, uint8_t{0}, __ATOMIC_RELAXED);
}

}  // namespace

Mapping::~Mapping() { munmap(base_, bytes_); }

std::shared_ptr<Mapping> createSegment(const std::string& path, int rank, int size, uint64_t ringBytes, uint64_t areaBytes) {
  if (path.size() >= kPathBytes) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared-memory path too long: " + path);
  const uint64_t ringsOffset = roundUp(sizeof(SegmentHeader), kPage);
  const uint64_t ringStride = sizeof(RingHeader) + ringBytes;
  const uint64_t areaOffset = roundUp(ringsOffset + ringStride * static_cast<uint64_t>(size), kPage);
  const uint64_t totalBytes = areaOffset + areaBytes;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) fail("cannot create the shared-memory segment " + path);
  if (ftruncate(fd, static_cast<off_t>(totalBytes)) != 0) {
    ::close(fd);
    unlink(path.c_str());
    fail("cannot size the shared-memory segment " + path + " (is /dev/shm full?)");
  }
#if defined(__linux__)
  // Reserve every page now: on a full tmpfs a later first write would be SIGBUS, not an error.
  const int reserved = posix_fallocate(fd, 0, static_cast<off_t>(totalBytes));
  if (reserved != 0) {
    ::close(fd);
    unlink(path.c_str());
    errno = reserved;
    fail("cannot reserve " + std::to_string(totalBytes >> 20) + " MiB for the shared-memory segment " + path +
         " (a container's /dev/shm is often 64 MB: enlarge it, or set TESSERA_SHM_DIR or a smaller TESSERA_SHM_AREA_MIB)");
  }
#endif
  std::shared_ptr<Mapping> mapping = mapFile(fd, totalBytes, path);
  touchPages(mapping->bytes(), totalBytes);
  // The file starts zeroed, which is every atomic's initial value; placement-new makes them objects.
  SegmentHeader* header = new (mapping->bytes()) SegmentHeader();
  header->version = kSegmentVersion;
  header->size = static_cast<uint32_t>(size);
  header->rank = static_cast<uint32_t>(rank);
  header->pid = static_cast<int32_t>(getpid());
  header->ringBytes = ringBytes;
  header->areaBytes = areaBytes;
  header->ringsOffset = ringsOffset;
  header->areaOffset = areaOffset;
  header->totalBytes = totalBytes;
  std::strncpy(header->path, path.c_str(), kPathBytes - 1);
  for (int i = 0; i < size; i++) new (mapping->bytes() + ringsOffset + ringStride * static_cast<uint64_t>(i)) RingHeader();
  std::atomic_thread_fence(std::memory_order_release);
  header->magic = kSegmentMagic;
  return mapping;
}

std::shared_ptr<Mapping> attachSegment(const std::string& path, int rank, int size) {
  const int fd = ::open(path.c_str(), O_RDWR);
  if (fd < 0) fail("cannot open rank " + std::to_string(rank) + "'s shared-memory segment " + path + " (--transport shm needs every rank on this host)");
  struct stat info {};
  if (fstat(fd, &info) != 0 || static_cast<size_t>(info.st_size) < sizeof(SegmentHeader)) {
    ::close(fd);
    throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "the shared-memory segment " + path + " is not a tessera segment");
  }
  std::shared_ptr<Mapping> mapping = mapFile(fd, static_cast<size_t>(info.st_size), path);
  const SegmentHeader* header = mapping->header();
  if (header->magic != kSegmentMagic || header->version != kSegmentVersion || header->size != static_cast<uint32_t>(size) ||
      header->rank != static_cast<uint32_t>(rank) || header->totalBytes != static_cast<uint64_t>(info.st_size)) {
    throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "the shared-memory segment " + path + " belongs to another mesh or another tessera version");
  }
  touchPages(mapping->bytes(), mapping->length());
  return mapping;
}

int sweepStaleSegments(const std::string& dir) {
  DIR* folder = opendir(dir.c_str());
  if (!folder) return 0;
  int removed = 0;
  while (dirent* entry = readdir(folder)) {
    // Names are tessera-shm-<pid>-<random>.
    int pid = 0;
    if (std::sscanf(entry->d_name, "tessera-shm-%d-", &pid) != 1 || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;
    if (unlink((dir + "/" + entry->d_name).c_str()) == 0) removed++;
  }
  closedir(folder);
  return removed;
}

}  // namespace tessera::comm
