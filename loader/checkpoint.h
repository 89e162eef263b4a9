// A Hugging Face checkpoint directory: config.json, the shard index and every
// shard it names, opened and checked against the tensor schema of the config.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "loader/config.h"
#include "loader/safetensors.h"
#include "loader/tensor_schema.h"

namespace dsv4 {

class Checkpoint {
 public:
  // Opens `dir`; throws dsv4::Error naming the file, tensor or field on any
  // problem: a missing file, a tensor missing or with the wrong dtype/shape.
  explicit Checkpoint(const std::string& dir);

  // The config.json of `dir` alone (no shard opened), with the same errors.
  static ModelConfig ReadConfig(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const std::vector<TensorSpec>& schema() const { return schema_; }

  // The tensor, checked against the schema at open time.
  const TensorView& Get(const std::string& name) const;
  const TensorView* Find(const std::string& name) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& shards() const { return shards_; }
  // Tensors in the files that the schema does not know (reported by inspect).
  const std::vector<std::string>& unexpected() const { return unexpected_; }

 private:
  std::string dir_;
  ModelConfig config_;
  std::vector<TensorSpec> schema_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, const TensorView*> tensors_;
  std::vector<std::string> unexpected_;
};

}  // namespace dsv4
