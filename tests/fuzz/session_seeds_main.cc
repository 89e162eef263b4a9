// Writes the session harness's seed corpus: sessions of the harness's small
// model (session_fuzz_model.h) saved by SaveSession, so their checksums
// hold. Not a test; built on demand:
//   ninja -C BUILD fuzz_session_seeds && BUILD/tests/fuzz/fuzz_session_seeds tests/fuzz/corpus/session_file
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/model/session_file.h"
#include "tests/fuzz/session_fuzz_model.h"

using namespace dsv4;

namespace {

// A state that has seen `tokens` tokens: every buffer filled with small
// random values and every store holding the rows that many tokens make.
void Fill(SequenceState& state, int64_t tokens, std::mt19937& random) {
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_int_distribution<int> byte(0, 255);
  const ModelConfig& c = state.config();
  for (int64_t L = 0; L < state.num_layers(); ++L) {
    LayerState& s = state.layer(L);
    s.length = tokens;
    for (std::vector<float>* v : {&s.window, &s.compressor.kv, &s.compressor.score, &s.indexer_compressor.kv,
                                  &s.indexer_compressor.score}) {
      for (float& x : *v) x = value(random);
    }
    const int64_t ratio = c.CompressRatio(L);
    if (s.compressed) {
      std::vector<uint8_t> rows(tokens / ratio * s.compressed->codec().bytes_per_row());
      for (uint8_t& b : rows) b = static_cast<uint8_t>(byte(random) & 0x77);  // finite FP8 codes, small scales
      s.compressed->AppendEncoded(rows.data(), tokens / ratio);
    }
    if (s.indexer_rows) {
      std::vector<uint8_t> rows(tokens / 4 * s.indexer_rows->codec().bytes_per_row());
      for (uint8_t& b : rows) b = static_cast<uint8_t>(byte(random) & 0x77);
      s.indexer_rows->AppendEncoded(rows.data(), tokens / 4);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const ModelConfig& config = fuzz::SessionModelConfig();
  std::mt19937 random(1);
  struct Seed {
    const char* name;
    Numerics numerics;
    int64_t tokens;
    bool logits;
  };
  for (const Seed& seed : {Seed{"empty-default", Numerics::kDefault, 0, false},
                           Seed{"nine-tokens-default", Numerics::kDefault, 9, true},
                           Seed{"nine-tokens-smooth", Numerics::kSmooth, 9, true},
                           Seed{"three-tokens-default-no-logits", Numerics::kDefault, 3, false}}) {
    SequenceState state(config, seed.numerics);
    Fill(state, seed.tokens, random);
    SessionContents contents;
    for (int64_t i = 0; i < seed.tokens; ++i) contents.tokens.push_back(static_cast<int32_t>(i * 7 % config.vocab_size));
    if (seed.logits) contents.last_logits.assign(config.vocab_size, 0.5f);
    SaveSession(dir + "/" + seed.name, state, contents, fuzz::kSessionModelIdentity);
  }
  return 0;
}
