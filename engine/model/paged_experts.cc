#include "engine/model/paged_experts.h"

#include "engine/model/model_weights.h"

namespace dsv4 {

PagedExperts::PagedExperts(const Checkpoint& checkpoint, const WeightStore& store) : store_(store) {
  // The mapped views give every expert's formats and shapes; when paging,
  // only their addresses change.
  const ModelWeights weights(checkpoint);
  for (const BlockWeights& block : weights.blocks) views_.push_back(block.moe.experts);
}

ExpertHandle PagedExperts::Acquire(int64_t block, int32_t expert) {
  ExpertHandle handle{views_.at(block).at(expert), nullptr};
  ExpertWeights& w = handle.weights;
  if (ExpertCache* cache = store_.expert_cache()) {
    ExpertCache::Pinned pinned = cache->Acquire(store_.ExpertItem(block, expert));
    // The order of ExpertTensorNames: w1, w3, w2, each weight then scale.
    w.w1.data = pinned.parts[0];
    w.w1.scales = pinned.parts[1];
    w.w3.data = pinned.parts[2];
    w.w3.scales = pinned.parts[3];
    w.w2.data = pinned.parts[4];
    w.w2.scales = pinned.parts[5];
    handle.pin = std::move(pinned.pin);
  }
  ++acquisitions_;
  acquired_bytes_ += w.w1.Bytes() + w.w3.Bytes() + w.w2.Bytes();
  return handle;
}

int64_t PagedExperts::MaxHeld() const {
  if (const ExpertCache* cache = store_.expert_cache()) return cache->slots() - 1;
  return ExpertSource::MaxHeld();
}

void PagedExperts::Prefetch(int64_t block, const std::vector<int32_t>& experts) {
  ExpertCache* cache = store_.expert_cache();
  if (!cache) return;
  std::vector<int64_t> items;
  for (int32_t e : experts) items.push_back(store_.ExpertItem(block, e));
  cache->Prefetch(items);
}

StoredModel LoadStoredModel(const std::string& dir, Numerics numerics, const WeightStoreOptions& options) {
  return LoadStoredModel(std::make_unique<Checkpoint>(dir), numerics, options);
}

StoredModel LoadStoredModel(std::unique_ptr<Checkpoint> checkpoint, Numerics numerics,
                            const WeightStoreOptions& options) {
  StoredModel stored;
  stored.checkpoint = std::move(checkpoint);
  stored.store = std::make_unique<WeightStore>(*stored.checkpoint, options);
  stored.experts = std::make_unique<PagedExperts>(*stored.checkpoint, *stored.store);
  stored.model = std::make_unique<Model>(*stored.checkpoint, numerics, stored.experts.get());
  return stored;
}

}  // namespace dsv4
