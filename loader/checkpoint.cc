#include "loader/checkpoint.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "loader/error.h"

namespace dsv4 {
namespace fs = std::filesystem;

namespace {

// Shard file names in the order the index first mentions them.
std::vector<std::string> ShardNames(const std::string& dir) {
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  if (!fs::exists(index_path)) {
    if (fs::exists(fs::path(dir) / "model.safetensors")) return {"model.safetensors"};
    throw Error(dir + ": no model.safetensors.index.json or model.safetensors");
  }
  std::ifstream in(index_path);
  std::stringstream text;
  text << in.rdbuf();
  auto index = nlohmann::json::parse(text.str(), nullptr, false);
  if (index.is_discarded() || !index.is_object()) throw Error(index_path.string() + ": not valid JSON");
  auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object()) throw Error(index_path.string() + ": no \"weight_map\" object");
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (auto& [tensor, file] : map->items()) {
    if (!file.is_string()) throw Error(index_path.string() + ": weight_map entry " + tensor + " is not a file name");
    const std::string f = file.get<std::string>();
    if (f.find('/') != std::string::npos) throw Error(index_path.string() + ": shard name " + f + " has a '/'");
    if (seen.insert(f).second) names.push_back(f);
  }
  return names;
}

}  // namespace

ModelConfig Checkpoint::ReadConfig(const std::string& dir) {
  if (!fs::is_directory(dir)) throw Error(dir + ": model directory not found");
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::exists(config_path)) throw Error(config_path.string() + ": not found");
  return ModelConfig::FromFile(config_path.string());
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  config_ = ReadConfig(dir);
  schema_ = ExpectedTensors(config_);

  for (const std::string& name : ShardNames(dir)) {
    const fs::path shard = fs::path(dir) / name;
    if (!fs::exists(shard)) throw Error(shard.string() + ": shard named in the index is missing");
    shards_.push_back(std::make_unique<SafetensorsFile>(shard.string()));
  }
  for (const auto& shard : shards_) {
    for (const auto& [name, view] : shard->tensors()) {
      if (!tensors_.emplace(name, &view).second) {
        throw Error(shard->path() + ": tensor " + name + " also appears in another shard");
      }
    }
  }
  std::set<std::string> expected;
  for (const TensorSpec& spec : schema_) {
    expected.insert(spec.name);
    auto it = tensors_.find(spec.name);
    if (it == tensors_.end()) throw Error(dir + ": tensor " + spec.name + " is missing");
    const TensorView& v = *it->second;
    if (v.dtype != spec.dtype) {
      throw Error(*v.file + ": tensor " + spec.name + " has dtype " + DTypeName(v.dtype) + ", expected " +
                  DTypeName(spec.dtype));
    }
    if (v.shape != spec.shape) {
      throw Error(*v.file + ": tensor " + spec.name + " has shape " + ShapeString(v.shape) + ", expected " +
                  ShapeString(spec.shape));
    }
  }
  for (const auto& [name, view] : tensors_) {
    if (!expected.count(name)) unexpected_.push_back(name);
  }
}

const TensorView* Checkpoint::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : it->second;
}

const TensorView& Checkpoint::Get(const std::string& name) const {
  const TensorView* v = Find(name);
  if (!v) throw Error(dir_ + ": tensor " + name + " is missing");
  return *v;
}

}  // namespace dsv4
