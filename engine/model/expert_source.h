// Where the routed experts' weights come from. The plain source hands out
// views of the memory-mapped shards; a paging source (loader/) keeps only a
// budget's worth of experts resident and reads the rest on demand.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "engine/model/model_weights.h"

namespace dsv4 {

struct ExpertHandle {
  ExpertWeights weights;
  std::shared_ptr<const void> pin;  // keeps a paged-in copy alive while in use
};

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;
  // The weights of routed expert `expert` of block `block`, valid while the
  // handle lives. Called outside parallel regions.
  virtual ExpertHandle Acquire(int64_t block, int32_t expert) = 0;
  // A hint that these experts of `block` are needed soon.
  virtual void Prefetch(int64_t block, const std::vector<int32_t>& experts) {}
  // How many handles may be held at once without a further Acquire waiting
  // forever for a free place.
  virtual int64_t MaxHeld() const { return std::numeric_limits<int64_t>::max(); }
};

// Views straight into the mapped checkpoint (everything the OS can page).
class MappedExperts : public ExpertSource {
 public:
  explicit MappedExperts(const ModelWeights& weights) : weights_(weights) {}
  ExpertHandle Acquire(int64_t block, int32_t expert) override {
    return {weights_.blocks[block].moe.experts[expert], nullptr};
  }

 private:
  const ModelWeights& weights_;
};

}  // namespace dsv4
