// Options shared by the commands that run the model (run, logits).
#pragma once

#include <memory>
#include <string>

#include <cxxopts.hpp>

#include "engine/model.h"
#include "loader/checkpoint.h"

namespace dsv4::cli {

void AddModelOptions(cxxopts::Options& options);

// The checkpoint and model named by -m, with --threads applied; logs to stderr.
struct LoadedModel {
  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Model> model;
  int64_t chunk = 0;
};
LoadedModel LoadModel(const cxxopts::ParseResult& args);

}  // namespace dsv4::cli
