// Collectives over native sockets (TCP between hosts, or Unix sockets), in
// the canonical reduction order. Short all-reduces (decode activations) take
// one round: every member sends its vector to every other and sums the same
// tree itself. Long ones are a reduce-scatter then an all-gather in 1 MiB
// segments, every receive posted before any send, so a segment's sum is
// computed while later segments are on the wire (the order of
// src/parallel/all-reduce.ts).
#pragma once
#include <memory>
#include <vector>

#include "exchange.h"
#include "group.h"
#include "socket-mesh.h"

namespace tessera::comm {

class SocketGroup : public Group {
 public:
  SocketGroup(std::shared_ptr<SocketMesh> mesh, std::vector<int> members);

  void allReduce(float* values, size_t count) override;
  void allGather(const uint8_t* mine, size_t length, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& lengths) override;
  void allToAll(const uint8_t* const* parts, const uint64_t* lengths, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& received) override;
  int size() const override { return static_cast<int>(members_.size()); }
  int index() const override { return index_; }

 private:
  void allReduceOneRound(float* values, size_t count);
  void allReduceSegmented(float* values, size_t count);

  std::shared_ptr<SocketMesh> mesh_;
  std::vector<int> members_;
  int index_ = -1;
  /** Received partials, kept between calls (a fresh buffer page-faults every call). */
  std::vector<float> scratch_;
};

}  // namespace tessera::comm
