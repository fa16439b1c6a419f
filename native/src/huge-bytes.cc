// hugeBytes(length): a Uint8Array for JS on 2 MiB pages. Bytes a process
// keeps for long (a rank's held weight slices while it re-shards, gigabytes)
// come from fresh memory, and fresh 4 KiB pages fault in at microseconds each
// on virtual machines; on transparent huge pages ("madvise" mode) one fault
// maps 2 MiB. The contents are unspecified: callers write every byte.
#include "huge-bytes.h"

#include <sys/mman.h>

#include <cstdlib>
#include <string>

#include "napi-args.h"

namespace tessera {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

struct HugeBlock {
  void* base;
  size_t size;
};

void freeBlock(Napi::Env env, void* /*data*/, HugeBlock* block) {
  Napi::MemoryManagement::AdjustExternalMemory(env, -static_cast<int64_t>(block->size));
  std::free(block->base);
  delete block;
}

}  // namespace

Napi::Value HugeBytes(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double requested = number(info, 0, "length");
  require(requested >= 0 && requested <= 0x1p46 && requested == static_cast<double>(static_cast<size_t>(requested)), env,
          "hugeBytes: length must be a whole number of bytes below 64 TiB");
  const size_t length = static_cast<size_t>(requested);
  const size_t size = (length + kHugePage - 1) / kHugePage * kHugePage;
  if (size == 0) return Napi::Uint8Array::New(env, 0);
  void* base = std::aligned_alloc(kHugePage, size);
  if (base == nullptr) throw Napi::Error::New(env, "out of memory for " + std::to_string(length) + " bytes");
  ::madvise(base, size, MADV_HUGEPAGE);
  // V8 counts external memory toward its GC heuristics; without this a process holding gigabytes here would look small.
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(size));
  auto* block = new HugeBlock{base, size};
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, base, length, freeBlock, block);
  return Napi::Uint8Array::New(env, length, buffer, 0);
}

}  // namespace tessera
