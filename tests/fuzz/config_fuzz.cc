// ModelConfig::FromFile on an arbitrary config.json. Bad files must throw
// dsv4::Error. A config that validates must survive its own round trip
// (ToJson, then FromJson: what `dsv4 synth` writes must load), and small
// ones are expanded into the tensor schema, whose shapes must be positive.
#include <cstdint>
#include <set>
#include <string>

#include "loader/config.h"
#include "loader/tensor_schema.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.Write(data, size);
  fuzz::Expect("ModelConfig::FromFile", [&] {
    const ModelConfig config = ModelConfig::FromFile(path);
    const nlohmann::ordered_json json = config.ToJson();
    ModelConfig again;
    try {
      again = ModelConfig::FromJson(json, "round trip");
    } catch (const Error& e) {
      fuzz::Finding(std::string("a validated config does not load from its own ToJson: ") + e.what());
    }
    fuzz::Check(again.ToJson() == json, "ToJson -> FromJson -> ToJson is the identity");
    // The schema grows with blocks x experts; keep the harness fast.
    if (config.NumBlocks() * (config.n_routed_experts + 8) > 4096) return;
    std::set<std::string> names;
    for (const TensorSpec& spec : ExpectedTensors(config)) {
      fuzz::Check(names.insert(spec.name).second, "tensor name " + spec.name + " appears twice in the schema");
      for (const int64_t d : spec.shape) fuzz::Check(d > 0, "tensor " + spec.name + " has a dimension <= 0");
    }
  });
  return 0;
}
