// Checkpoint on a directory whose model.safetensors.index.json is the input:
// the tiny test model's config.json and its three shards (symbolic links to
// tests/data/tiny-dsv4/checkpoint) sit beside it, so an index naming them
// opens the whole checkpoint and checks it against the schema. Bad indexes
// must throw dsv4::Error.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "loader/checkpoint.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;
namespace fs = std::filesystem;

namespace {

// A directory of this process under the temporary directory, removed at exit.
class ModelDir {
 public:
  ModelDir() : path_(fs::temp_directory_path() / ("dsv4-fuzz-shard-index." + std::to_string(::getpid()))) {
    const fs::path source = fuzz::TestData("tiny-dsv4/checkpoint");
    fs::remove_all(path_);
    fs::create_directories(path_);
    fs::copy_file(source / "config.json", path_ / "config.json");
    for (const auto& entry : fs::directory_iterator(source)) {
      if (entry.path().extension() == ".safetensors") {
        fs::create_symlink(fs::absolute(entry.path()), path_ / entry.path().filename());
      }
    }
  }
  ~ModelDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ModelDir model_dir;
  const std::string dir = model_dir.path();
  {
    std::ofstream index(dir + "/model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    index.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!index) fuzz::Finding("cannot write the index file");
  }
  fuzz::Expect("Checkpoint", [&] {
    const Checkpoint checkpoint(dir);
    for (const TensorSpec& spec : checkpoint.schema()) {
      fuzz::Check(checkpoint.Get(spec.name).shape == spec.shape, "an opened checkpoint matches its schema");
    }
  });
  return 0;
}
