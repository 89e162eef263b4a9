// Routed experts served from a WeightStore: views of resident memory when
// every expert is resident, copies pinned in the store's ExpertCache when
// the budget pages them. Either way it counts what it hands out, for the
// bytes-per-token figures of `dsv4 bench`.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/expert_source.h"
#include "engine/model/model.h"
#include "engine/model/numerics.h"
#include "loader/checkpoint.h"
#include "loader/weight_store.h"

namespace dsv4 {

class PagedExperts : public ExpertSource {
 public:
  // Both must outlive this object.
  PagedExperts(const Checkpoint& checkpoint, const WeightStore& store);

  ExpertHandle Acquire(int64_t block, int32_t expert) override;
  void Prefetch(int64_t block, const std::vector<int32_t>& experts) override;
  // Paged: all slots of the cache but one, which stays free for reads ahead.
  int64_t MaxHeld() const override;

  // Acquisitions so far and the expert weight bytes they handed out.
  int64_t acquisitions() const { return acquisitions_.load(); }
  int64_t acquired_bytes() const { return acquired_bytes_.load(); }

 private:
  const WeightStore& store_;
  std::vector<std::vector<ExpertWeights>> views_;  // [block][expert], shapes and mapped addresses
  std::atomic<int64_t> acquisitions_{0}, acquired_bytes_{0};
};

// A model whose weights live in a WeightStore (what run, logits and bench
// load). Members are declared so that they are destroyed users first.
struct StoredModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<WeightStore> store;
  std::unique_ptr<PagedExperts> experts;
  std::unique_ptr<Model> model;
};

StoredModel LoadStoredModel(const std::string& dir, Numerics numerics, const WeightStoreOptions& options);
// The same for a checkpoint already opened (to plan its memory first).
StoredModel LoadStoredModel(std::unique_ptr<Checkpoint> checkpoint, Numerics numerics,
                            const WeightStoreOptions& options);

}  // namespace dsv4
