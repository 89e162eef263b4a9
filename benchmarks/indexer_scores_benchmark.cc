// IndexerScores at DeepSeek-V4 shapes, on every Highway target this CPU runs
// and against the scalar reference, in one run:
//   flash:   1 query x 64 heads x 128 dims, 65536 and 262144 key rows (decode)
//   prefill: 16 queries x 64 heads x 128 dims, 32768 key rows
//   small:   64 queries x 1 head x 32 dims, 131072 key rows
// Every query sees every row. Counters: items/s in (query, head, row) triples
// and GMACs (multiply-adds of the dot products per second).
//
//   indexer_scores_benchmark [--threads=N] [Google Benchmark flags]
// (default: one thread per physical core, pinned). The reference runs one
// iteration per shape: it is some fifty times slower.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "simd/indexer_scores.h"
#include "simd/threads.h"

namespace dsv4 {
namespace {

struct Shape {
  const char* name;
  int64_t count, heads, dim, rows;
};

constexpr Shape kShapes[] = {
    {"flash", 1, 64, 128, 65536},
    {"flash", 1, 64, 128, 262144},
    {"prefill", 16, 64, 128, 32768},
    {"small", 64, 1, 32, 131072},
};

// Random FP4 queries and keys of one shape; scales near 1.
struct Workload {
  std::vector<uint8_t> query_codes, query_scales, key_codes, key_scales;
  std::vector<float> weights, scores;
  std::vector<int64_t> visible;
  IndexerQueries queries;
  Fp4Rows keys;

  explicit Workload(const Shape& s)
      : query_codes(s.count * s.heads * s.dim / 2),
        query_scales(s.count * s.heads * s.dim / 32),
        key_codes(s.rows * s.dim / 2),
        key_scales(s.rows * s.dim / 32),
        weights(s.count * s.heads),
        scores(s.count * s.rows),
        visible(s.count, s.rows) {
    std::mt19937 rng(7);
    for (auto* bytes : {&query_codes, &key_codes}) {
      for (uint8_t& b : *bytes) b = static_cast<uint8_t>(rng());
    }
    for (auto* bytes : {&query_scales, &key_scales}) {
      for (uint8_t& b : *bytes) b = static_cast<uint8_t>(124 + rng() % 7);
    }
    for (float& w : weights) w = static_cast<float>(rng() % 1000) / 500.0f - 0.5f;
    queries = IndexerQueries{Fp4Rows{query_codes.data(), query_scales.data(), s.count * s.heads, s.dim}, s.count,
                             s.heads, weights.data()};
    keys = Fp4Rows{key_codes.data(), key_scales.data(), s.rows, s.dim};
  }
};

// One workload alive at a time (the largest key set is 17 MiB).
Workload& WorkloadFor(const Shape& shape) {
  static std::unique_ptr<Workload> workload;
  static const Shape* current = nullptr;
  if (current != &shape) {
    workload.reset();
    workload = std::make_unique<Workload>(shape);
    current = &shape;
  }
  return *workload;
}

// target: a Highway target bit for IndexerScores, 0 for the reference.
void BM_IndexerScores(benchmark::State& state, const Shape* shape, int64_t target) {
  Workload& w = WorkloadFor(*shape);
  if (target != 0) hwy::SetSupportedTargetsForTest(target);
  const auto run = target != 0 ? IndexerScores : IndexerScoresReference;
  for (auto _ : state) {
    run(w.queries, w.keys, w.visible.data(), w.scores.data(), shape->rows);
    benchmark::DoNotOptimize(w.scores.data());
    benchmark::ClobberMemory();
  }
  hwy::SetSupportedTargetsForTest(0);
  const double triples = static_cast<double>(shape->count * shape->heads * shape->rows);
  state.SetItemsProcessed(static_cast<int64_t>(triples) * state.iterations());
  state.counters["GMACs"] = benchmark::Counter(triples * static_cast<double>(shape->dim) * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace
}  // namespace dsv4

int main(int argc, char** argv) {
  using namespace dsv4;  // NOLINT
  int threads = 0;       // 0: one per physical core
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads = std::atoi(argv[i] + 10);
    } else {
      rest.push_back(argv[i]);
    }
  }
  std::fprintf(stderr, "indexer_scores_benchmark: %d threads, dispatching to %s\n", SetThreadCount(threads).threads,
               IndexerScoresTargetName());
  for (const Shape& shape : kShapes) {
    const std::string name = std::string(shape.name) + "/q" + std::to_string(shape.count) + "_h" +
                             std::to_string(shape.heads) + "_d" + std::to_string(shape.dim) + "_rows" +
                             std::to_string(shape.rows);
    for (const int64_t target : hwy::SupportedAndGeneratedTargets()) {
      benchmark::RegisterBenchmark((name + "/" + hwy::TargetName(target)).c_str(), BM_IndexerScores, &shape, target)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
    benchmark::RegisterBenchmark((name + "/reference").c_str(), BM_IndexerScores, &shape, int64_t{0})
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->Iterations(1);
  }
  int rest_count = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
