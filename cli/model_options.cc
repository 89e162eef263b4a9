#include "cli/model_options.h"

#include <omp.h>

#include <chrono>
#include <cstdio>

#include "loader/error.h"

namespace dsv4::cli {

void AddModelOptions(cxxopts::Options& options) {
  options.add_options()
      ("m,model", "Model directory (Hugging Face layout)", cxxopts::value<std::string>())
      ("numerics", "default | smooth (no KV/indexer round trips)", cxxopts::value<std::string>()->default_value("default"))
      ("chunk", "Prefill chunk size in tokens (0 = whole prompt)", cxxopts::value<int64_t>()->default_value("0"))
      ("threads", "Worker threads (default: all cores)", cxxopts::value<int>());
}

LoadedModel LoadModel(const cxxopts::ParseResult& args) {
  if (!args.count("model")) throw Error("-m/--model DIR is required");
  if (args.count("threads")) {
    const int threads = args["threads"].as<int>();
    if (threads < 1) throw Error("--threads must be >= 1");
    omp_set_num_threads(threads);
  }
  LoadedModel loaded;
  loaded.chunk = args["chunk"].as<int64_t>();
  if (loaded.chunk < 0) throw Error("--chunk must be >= 0");
  const Numerics numerics = ParseNumerics(args["numerics"].as<std::string>());
  const auto start = std::chrono::steady_clock::now();
  const std::string dir = args["model"].as<std::string>();
  loaded.checkpoint = std::make_unique<Checkpoint>(dir);
  loaded.model = std::make_unique<Model>(*loaded.checkpoint, numerics);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "loaded %s: %lld layers, vocab %lld, numerics %s (%.2f s)\n", dir.c_str(),
               static_cast<long long>(loaded.checkpoint->config().num_hidden_layers),
               static_cast<long long>(loaded.checkpoint->config().vocab_size), NumericsName(numerics), seconds);
  return loaded;
}

}  // namespace dsv4::cli
