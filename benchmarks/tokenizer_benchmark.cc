// Tokenizer speed on one thread: loading tokenizer.json, and encode
// throughput (bytes of UTF-8 text per second) per kind of text.
//
//   build/benchmarks/tokenizer_benchmark [--benchmark_min_time=0.2]
//
// Texts are the rows of tests/data/tokenizer/golden_ids.jsonl, grouped by
// their "kind" (prose, code, CJK scripts, digits, white space, ...). Set
// DSV4_TOKENIZER_CORPUS=FILE.jsonl (benchmarks/make_tokenizer_corpus.py) to
// add a run over a larger corpus; DSV4_TOKENIZER_JSON overrides the tokenizer.
// Encoding caches words per thread, so a text is encoded once before timing.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/streaming_decoder.h"
#include "engine/text/tokenizer.h"

namespace dsv4 {
namespace {

std::string DataDir() {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "tests" / "data" / "tokenizer").string();
}

std::string TokenizerPath() {
  const char* path = std::getenv("DSV4_TOKENIZER_JSON");
  return path ? path : DataDir() + "/tokenizer.json";
}

const Tokenizer& SharedTokenizer() {
  static const Tokenizer tokenizer = Tokenizer::FromFile(TokenizerPath());
  return tokenizer;
}

// kind -> texts, from a JSONL file of {"kind", "text"} rows.
std::map<std::string, std::vector<std::string>> ReadTexts(const std::string& path) {
  std::map<std::string, std::vector<std::string>> texts;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line);
    texts[row.value("kind", "all")].push_back(row["text"].get<std::string>());
  }
  return texts;
}

void BM_Load(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::FromFile(TokenizerPath()).VocabSize());
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond);

void EncodeAll(benchmark::State& state, const std::vector<std::string>& texts) {
  const Tokenizer& tokenizer = SharedTokenizer();
  int64_t bytes = 0, tokens = 0;
  for (const std::string& text : texts) {
    bytes += static_cast<int64_t>(text.size());
    tokens += static_cast<int64_t>(tokenizer.Encode(text).size());
  }
  std::vector<int32_t> ids;
  for (auto _ : state) {
    for (const std::string& text : texts) {
      ids.clear();
      tokenizer.EncodeAppend(text, ids);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["bytes_per_token"] = static_cast<double>(bytes) / static_cast<double>(tokens);
}

void BM_Decode(benchmark::State& state, const std::vector<std::string>& texts) {
  const Tokenizer& tokenizer = SharedTokenizer();
  std::vector<std::vector<int32_t>> ids;
  int64_t bytes = 0;
  for (const std::string& text : texts) {
    ids.push_back(tokenizer.Encode(text));
    bytes += static_cast<int64_t>(text.size());
  }
  for (auto _ : state) {
    for (const auto& row : ids) {
      StreamingDecoder decoder(tokenizer);
      for (const int32_t id : row) benchmark::DoNotOptimize(decoder.Push(id));
      benchmark::DoNotOptimize(decoder.Finish());
    }
  }
  state.SetBytesProcessed(state.iterations() * bytes);
}

void RegisterEncodeBenchmarks() {
  const auto golden = ReadTexts(DataDir() + "/golden_ids.jsonl");
  std::vector<std::string> all;
  for (const auto& [kind, texts] : golden) {
    benchmark::RegisterBenchmark(("BM_Encode/" + kind).c_str(), EncodeAll, texts);
    all.insert(all.end(), texts.begin(), texts.end());
  }
  benchmark::RegisterBenchmark("BM_Encode/golden_all", EncodeAll, all);
  benchmark::RegisterBenchmark("BM_StreamingDecode/golden_all", BM_Decode, all);
  if (const char* corpus = std::getenv("DSV4_TOKENIZER_CORPUS")) {
    std::vector<std::string> texts;
    for (const auto& [kind, rows] : ReadTexts(corpus)) {
      benchmark::RegisterBenchmark(("BM_EncodeCorpus/" + kind).c_str(), EncodeAll, rows);
      texts.insert(texts.end(), rows.begin(), rows.end());
    }
    benchmark::RegisterBenchmark("BM_EncodeCorpus/all", EncodeAll, texts);
  }
}

}  // namespace
}  // namespace dsv4

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  dsv4::RegisterEncodeBenchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
