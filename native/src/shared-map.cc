// mapShared(fd, length, writable): a Uint8Array over a file mapped shared,
// for the KV rings two replicas on one host copy rows through. Copies into
// and out of a mapping are plain memcpy in the caller's thread; the same
// copies through pwritev/preadv on a tmpfs file cost a page-cache lookup and
// lock per 4 KiB and ran at 0.4-0.9 GB/s here against 5-9 GB/s mapped.
//
// Every page of the mapping is touched once here (written back with its own
// byte when writable, read otherwise): on this virtual machine the first
// access to each page of a fresh mapping costs about 5 us even when the
// file's pages exist, and MAP_POPULATE or MADV_POPULATE_WRITE did not avoid
// it (a first pass over a 128 MiB ring ran at 0.7 GB/s, later ones at 22),
// so the cost is paid once, when a ring is mapped, not page by page in its
// transfers. Only a ring's writer maps it writable, and it maps it before
// it writes its first frame, so the write-back changes no byte anyone reads.
// Map only a file whose pages are all written: touching a hole that tmpfs
// has no room for raises SIGBUS (checked on a 1 MiB tmpfs), where a write
// through the descriptor would have returned ENOSPC. The mapping outlives
// the descriptor; it is unmapped when the array buffer is collected.
#include "shared-map.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "napi-args.h"

namespace tessera {
namespace {

constexpr size_t kPage = 4096;

void touchPages(volatile uint8_t* base, size_t length, bool writable) {
  uint8_t sum = 0;
  for (size_t at = 0; at < length; at += kPage) {
    const uint8_t byte = base[at];
    if (writable) base[at] = byte;
    sum ^= byte;
  }
  static volatile uint8_t sink;
  sink = sum;
}

struct SharedMapping {
  void* base;
  size_t length;
};

void unmap(Napi::Env env, void* /*data*/, SharedMapping* mapping) {
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(mapping->length));
  ::munmap(mapping->base, mapping->length);
  delete mapping;
}

}  // namespace

Napi::Value MapShared(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double fdArg = number(info, 0, "fd");
  const double requested = number(info, 1, "length");
  require(fdArg >= 0 && fdArg <= 0x7fffffff && fdArg == static_cast<double>(static_cast<int>(fdArg)), env, "mapShared: fd must be an open descriptor");
  require(requested > 0 && requested <= 0x1p40 && requested == static_cast<double>(static_cast<size_t>(requested)), env,
          "mapShared: length must be a whole number of bytes, 1 B to 1 TiB");
  require(info.Length() > 2 && info[2].IsBoolean(), env, "mapShared: writable must be a boolean");
  const bool writable = info[2].As<Napi::Boolean>().Value();
  const size_t length = static_cast<size_t>(requested);
  const int protection = writable ? PROT_READ | PROT_WRITE : PROT_READ;
  void* base = ::mmap(nullptr, length, protection, MAP_SHARED, static_cast<int>(fdArg), 0);
  if (base == MAP_FAILED) throw Napi::Error::New(env, std::string("mapShared: mmap failed: ") + std::strerror(errno));
  touchPages(static_cast<volatile uint8_t*>(base), length, writable);
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length));
  auto* mapping = new SharedMapping{base, length};
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, base, length, unmap, mapping);
  return Napi::Uint8Array::New(env, length, buffer, 0);
}

}  // namespace tessera
