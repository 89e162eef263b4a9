// dsv4 plan and the memory plan every model command starts with: the JSON
// fields, paging under a budget, the context that fits with --kv-dir, a
// clear error below the minimum, and (where this process may create a
// memory cgroup) runs inside a cgroup limit too small for every weight: the
// experts paged, a request whose KV cannot fit refused before any work.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/golden.h"
#include "tests/support/test_support.h"

namespace dsv4 {
namespace {

using Json = nlohmann::json;

std::string Model() { return testing::ShellQuote(testing::Golden().checkpoint_dir()); }

Json PlanJson(const std::string& flags) {
  const testing::CommandResult r = testing::RunCli("plan -m " + Model() + " --json --no-probe " + flags);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return Json::parse(r.out);
}

TEST(PlanCli, JsonHoldsThePlan) {
  const Json plan = PlanJson("");
  for (const char* key : {"mem_budget_bytes", "resident_bytes", "paged_bytes", "decode_bytes_per_token",
                          "kv_bytes_per_token", "max_context_ram", "ram_read_gbps", "disk_read_gbps",
                          "predicted_decode_tok_s", "available_bytes", "kv_ram_pool_bytes", "fresh_memory_gbps",
                          "expert_cache_start_slots", "expert_cache_fill_tokens",
                          "predicted_decode_tok_s_full_cache", "decode_overhead_seconds_per_layer",
                          "decode_step_overhead_seconds"}) {
    EXPECT_TRUE(plan.contains(key)) << key;
  }
  EXPECT_FALSE(plan["paging"].get<bool>());
  EXPECT_TRUE(plan["mem_budget_auto"].get<bool>());
  EXPECT_EQ(plan["paged_bytes"].get<int64_t>(), 0);
  EXPECT_GT(plan["kv_bytes_per_token"].get<double>(), 0);
  EXPECT_GT(plan["decode_bytes_per_token"].get<double>(), 0);
}

TEST(PlanCli, ABudgetPagesTheExperts) {
  const Json all = PlanJson("");
  const int64_t budget = all["dense_bytes"].get<int64_t>() + 4 * 1024 * 1024;
  const Json plan = PlanJson("--mem-budget " + std::to_string(budget));
  EXPECT_TRUE(plan["paging"].get<bool>());
  EXPECT_FALSE(plan["mem_budget_auto"].get<bool>());
  EXPECT_GT(plan["expert_cache_slots"].get<int64_t>(), 1);
  EXPECT_GT(plan["paged_bytes"].get<int64_t>(), 0);
  EXPECT_LE(plan["resident_bytes"].get<int64_t>(), budget);
  // Nothing probed: no reason to expect a cache that fills slowly.
  EXPECT_EQ(plan["expert_cache_start_slots"].get<int64_t>(), plan["expert_cache_slots"].get<int64_t>());
}

TEST(PlanCli, KvDirAddsTheContextTheDiskHolds) {
  testing::TempDir dir;
  const Json plan = PlanJson("--kv-dir " + testing::ShellQuote(dir.path()) + " --ctx-size 4000");
  EXPECT_EQ(plan["context_tokens"].get<int64_t>(), 4000);
  EXPECT_EQ(plan["max_context_disk"].get<int64_t>(), 4000);
  EXPECT_GT(plan["kv_dir_free_bytes"].get<int64_t>(), 0);
}

TEST(PlanCli, TextAndProbes) {
  const testing::CommandResult r = testing::RunCli("plan -m " + Model());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("every weight resident"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("predicted:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GB/s"), std::string::npos) << r.out;
  // The step's overhead, timed on 4 of the tiny model's 7 layers.
  EXPECT_NE(r.out.find("timed on 4 layers of zero weights"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("a decode step of 4 zero-weight layers took"), std::string::npos) << r.err;
}

TEST(PlanCli, BadBudgetsAreOneLineErrors) {
  const testing::CommandResult low = testing::RunCli("plan -m " + Model() + " --no-probe --mem-budget 1M");
  EXPECT_EQ(low.exit_code, 1);
  EXPECT_NE(low.err.find("--mem-budget 1 MiB is less than the dense weights"), std::string::npos) << low.err;
  const testing::CommandResult text = testing::RunCli("plan -m " + Model() + " --no-probe --mem-budget lots");
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.err.find("--mem-budget"), std::string::npos) << text.err;
  const testing::CommandResult kv = testing::RunCli("run -m " + Model() + " --prompt-ids 1 --kv-ram-budget 1M");
  EXPECT_EQ(kv.exit_code, 1);
  EXPECT_NE(kv.err.find("--kv-ram-budget needs --kv-dir"), std::string::npos) << kv.err;
}

TEST(PlanCli, RunSaysWhatThePlanChose) {
  const testing::CommandResult r = testing::RunCli("run -m " + Model() + " --prompt-ids 1,2,3 -n 3 --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("memory plan: every weight resident"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("memory plan"), std::string::npos);
}

// A memory cgroup below this process's own, with `limit` bytes; empty when
// this process may not create one (not root, no v1 memory hierarchy).
class MemoryCgroup {
 public:
  explicit MemoryCgroup(int64_t limit) {
    std::ifstream in("/proc/self/cgroup");
    std::string line, parent;
    while (std::getline(in, line)) {
      const size_t a = line.find(':'), b = line.find(':', a + 1);
      if (a != std::string::npos && b != std::string::npos && line.substr(a + 1, b - a - 1) == "memory") {
        parent = "/sys/fs/cgroup/memory" + line.substr(b + 1);
      }
    }
    if (parent.empty() || !std::filesystem::is_directory(parent)) return;
    const std::string dir = parent + "/dsv4-plan-test-" + std::to_string(::getpid());
    std::error_code ec;
    if (!std::filesystem::create_directory(dir, ec)) return;
    dir_ = dir;
    std::ofstream(dir_ + "/memory.limit_in_bytes") << limit;
    std::ifstream check(dir_ + "/memory.limit_in_bytes");
    int64_t set = 0;
    if (!(check >> set) || set > limit) Remove();
  }
  ~MemoryCgroup() { Remove(); }
  const std::string& dir() const { return dir_; }
  // Runs `dsv4 <args>` inside the cgroup; stderr into `err`.
  int Run(const std::string& args, std::string& err) const {
    testing::TempDir tmp;
    const std::string command = "sh -c " + testing::ShellQuote("echo $$ > " + dir_ + "/cgroup.procs && exec '" +
                                                               std::string(DSV4_CLI_BINARY) + "' " + args) +
                                " >/dev/null 2>" + tmp.File("err");
    const int status = std::system(command.c_str());
    err = testing::ReadFile(tmp.File("err"));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  void Remove() {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
    dir_.clear();
  }
  std::string dir_;
};

TEST(PlanCli, InsideACgroupTooSmallForEveryWeightExpertsArePagedAndLongRequestsRefused) {
  // The tiny model with 16x its experts (~100 MB of them beside ~11 MB
  // dense) and a context of 1M tokens.
  testing::TempDir dir;
  const std::string model = testing::ShellQuote(dir.File("model"));
  ASSERT_EQ(testing::RunCli("synth --like tiny --experts 256 --max-positions 1048576 --out " + model).exit_code, 0);
  const testing::CommandResult r = testing::RunCli("plan -m " + model + " --json --no-probe");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json plan = Json::parse(r.out);
  // Room for the dense weights, working memory, the KV reserve, this
  // process's own memory and some experts, not for all of them.
  const int64_t overhead = plan["working_bytes"].get<int64_t>() + plan["kv_reserve_bytes"].get<int64_t>();
  const int64_t limit = plan["dense_bytes"].get<int64_t>() + overhead + (48 << 20);
  ASSERT_LT(limit, plan["mem_budget_bytes"].get<int64_t>() + overhead);
  // A sanitizer's shadow memory is far more than the headroom given above.
  if (testing::kSanitized) GTEST_SKIP() << "the limit is sized for an uninstrumented process";
  MemoryCgroup cgroup(limit);
  if (cgroup.dir().empty()) GTEST_SKIP() << "no memory cgroup can be created here (needs root and cgroup v1)";
  std::string err;
  ASSERT_EQ(cgroup.Run("run -m " + model + " --prompt-ids 1,2,3 -n 8 --seed 1", err), 0) << err;
  EXPECT_NE(err.find("memory plan: routed experts paged"), std::string::npos) << err;
  EXPECT_NE(err.find("memory.limit_in_bytes"), std::string::npos) << err;
  // The KV pool is about the reserve (64k tokens): 100k more tokens cannot
  // fit, and the request is refused before any work, naming --kv-dir.
  ASSERT_EQ(cgroup.Run("run -m " + model + " --prompt-ids 1,2,3 -n 100000 --seed 1", err), 1) << err;
  EXPECT_NE(err.find("of KV in RAM for 100003 tokens (prompt 3 + max_tokens 100000)"), std::string::npos) << err;
  EXPECT_NE(err.find("give --kv-dir DIR"), std::string::npos) << err;
  EXPECT_EQ(err.find("generated"), std::string::npos) << "no work is done: " << err;
  // bench, probes included, stays inside the same plan.
  ASSERT_EQ(cgroup.Run("bench -m " + model + " --prompt-tokens 16 --gen-tokens 4 --json", err), 0) << err;
  EXPECT_NE(err.find("memory plan: routed experts paged"), std::string::npos) << err;
}

}  // namespace
}  // namespace dsv4
