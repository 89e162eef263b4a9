#include "loader/model_summary.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "loader/error.h"
#include "loader/safetensors_writer.h"

namespace dsv4 {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxProblemsPerKind = 20;

uint64_t SpecBytes(const TensorSpec& spec) { return TensorBytes({spec.name, spec.dtype, spec.shape}); }

uint64_t SpecParameters(const TensorSpec& spec) {
  switch (spec.role) {
    case TensorRole::kScale:
    case TensorRole::kHashTable:
      return 0;
    case TensorRole::kFp4Weight:
      return SpecBytes(spec) * 2;
    default:
      return SpecBytes(spec) / DTypeSize(spec.dtype);
  }
}

std::vector<LayerSummary> Schedule(const ModelConfig& c) {
  std::vector<LayerSummary> layers;
  for (int64_t L = 0; L < c.NumBlocks(); ++L) {
    LayerSummary s;
    std::string prefix = BlockPrefix(c, L);
    s.name = prefix.substr(0, prefix.size() - 1);
    s.compress_ratio = c.CompressRatio(L);
    s.attention = s.compress_ratio == 0 ? "window" : c.IsCsaLayer(L) ? "CSA" : "HCA";
    s.routing = c.IsHashLayer(L) ? "hash" : "score";
    s.rope_theta = s.compress_ratio == 0 ? c.rope_theta : c.compress_rope_theta;
    s.yarn = s.compress_ratio != 0 && c.rope_scaling.yarn;  // YaRN applies to compressed layers only
    layers.push_back(s);
  }
  return layers;
}

// Bytes (and parameters) one decoded token reads, from the schema sizes.
void ComputeDecode(const ModelConfig& c, const std::vector<TensorSpec>& schema, ModelSummary& summary) {
  DecodeRead& d = summary.decode;
  const uint64_t k = c.num_experts_per_tok, experts = c.n_routed_experts;
  std::map<int64_t, uint64_t> expert_bytes, expert_params;  // per block, all experts
  uint64_t mtp_dense = 0, mtp_params = 0, head_params = 0;
  uint64_t active = 0;
  for (const TensorSpec& spec : schema) {
    const uint64_t bytes = SpecBytes(spec), params = SpecParameters(spec);
    const bool mtp = spec.block >= c.num_hidden_layers;
    if (spec.name.find(".ffn.experts.") != std::string::npos) {
      expert_bytes[spec.block] += bytes;
      expert_params[spec.block] += params;
    } else if (spec.name == "embed.weight") {
      d.embedding_row = bytes / c.vocab_size;
      active += params / c.vocab_size;
    } else if (spec.name == "head.weight") {
      d.head = bytes;
      head_params = params;
    } else if (spec.role == TensorRole::kHashTable) {
      d.dense += bytes / c.vocab_size;  // the current token's row
    } else if (mtp) {
      mtp_dense += bytes;
      mtp_params += params;
    } else {
      d.dense += bytes;
      active += params;
    }
  }
  for (const auto& [block, bytes] : expert_bytes) {
    const uint64_t read = bytes / experts * k, params = expert_params[block] / experts * k;
    if (block >= c.num_hidden_layers) {
      mtp_dense += read;
      mtp_params += params;
    } else {
      d.routed_experts += read;
      active += params;
    }
  }
  d.total = d.dense + d.routed_experts + d.embedding_row + d.head;
  if (c.num_nextn_predict_layers > 0) d.mtp_step = mtp_dense + d.embedding_row + d.head;
  summary.active_parameters = active + head_params;
}

KvFootprint ComputeKv(const ModelConfig& c, int64_t row_bytes, int64_t indexer_row_bytes) {
  KvFootprint kv;
  kv.row_bytes = row_bytes;
  kv.indexer_row_bytes = indexer_row_bytes;
  const uint64_t max_tokens = c.max_position_embeddings;
  for (int64_t L = 0; L < c.NumBlocks(); ++L) {
    kv.fixed_bytes += c.sliding_window * row_bytes;  // the window ring
    const int64_t r = c.CompressRatio(L);
    if (r == 0) continue;
    // Compressor state: kv_state and score_state, f32, of (coff * r) rows of
    // coff * width, where ratio-4 compressors overlap two windows (coff = 2).
    const int64_t coff = c.IsCsaLayer(L) ? 2 : 1;
    kv.fixed_bytes += 2 * (coff * r) * (coff * c.head_dim) * 4;
    kv.bytes_per_token += static_cast<double>(row_bytes) / r;
    kv.bytes_at_max_context += max_tokens / r * row_bytes;
    if (c.IsCsaLayer(L)) {
      kv.fixed_bytes += 2 * (coff * r) * (coff * c.index_head_dim) * 4;
      kv.bytes_per_token += static_cast<double>(indexer_row_bytes) / r;
      kv.bytes_at_max_context += max_tokens / r * indexer_row_bytes;
    }
  }
  kv.bytes_at_max_context += kv.fixed_bytes;
  return kv;
}

void AddDtype(ModelSummary& s, DType dtype, uint64_t bytes) {
  DTypeUsage& u = s.by_dtype[DTypeName(dtype)];
  ++u.tensors;
  u.bytes += bytes;
  ++s.tensor_count;
  s.weight_bytes += bytes;
}

ModelSummary Common(const ModelConfig& config, const std::string& source, const std::vector<TensorSpec>& schema) {
  ModelSummary s;
  s.source = source;
  s.config = config;
  s.layers = Schedule(config);
  for (const TensorSpec& spec : schema) {
    s.parameters += SpecParameters(spec);
    if (spec.block >= config.num_hidden_layers) s.mtp_parameters += SpecParameters(spec);
  }
  ComputeDecode(config, schema, s);
  const int64_t rope = config.qk_rope_head_dim, nope = config.NopeHeadDim(), ihd = config.index_head_dim;
  s.kv_reference = ComputeKv(config, config.head_dim * 2, ihd * 2);
  s.kv_compact = ComputeKv(config, nope + nope / 64 + rope * 4, ihd / 2 + ihd / 32);
  return s;
}

class ProblemList {
 public:
  explicit ProblemList(std::vector<std::string>& out) : out_(out) {}
  void Add(const std::string& kind, const std::string& text) {
    if (++counts_[kind] <= kMaxProblemsPerKind) out_.push_back(text);
  }
  // Adds a line for each kind that had more problems than were listed.
  void Finish() {
    for (const auto& [kind, n] : counts_) {
      if (n > kMaxProblemsPerKind) {
        out_.push_back("... and " + std::to_string(n - kMaxProblemsPerKind) + " more " + kind);
      }
    }
  }

 private:
  std::vector<std::string>& out_;
  std::map<std::string, size_t> counts_;
};

void CheckIndex(const Checkpoint& ckpt, uint64_t data_bytes, ProblemList& problems) {
  const fs::path path = fs::path(ckpt.dir()) / "model.safetensors.index.json";
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const Json index = Json::parse(text.str(), nullptr, false);  // Checkpoint already parsed it
  if (index.is_discarded()) return;
  const auto meta = index.find("metadata");
  if (meta != index.end() && meta->is_object() && meta->contains("total_size")) {
    const Json& total = (*meta)["total_size"];
    if (!total.is_number_unsigned() || total.get<uint64_t>() != data_bytes) {
      problems.Add("index problems", path.string() + ": metadata.total_size is " + total.dump() +
                                         ", the shards hold " + std::to_string(data_bytes) + " bytes of tensors");
    }
  }
  std::map<std::string, std::string> located;
  for (const auto& shard : ckpt.shards()) {
    const std::string file = fs::path(shard->path()).filename().string();
    for (const auto& [name, view] : shard->tensors()) located[name] = file;
  }
  const auto map_it = index.find("weight_map");
  if (map_it == index.end() || !map_it->is_object()) return;
  const Json& map = *map_it;
  for (auto it = map.begin(); it != map.end(); ++it) {
    auto found = located.find(it.key());
    if (found == located.end()) {
      problems.Add("index problems", path.string() + ": weight_map lists " + it.key() + ", which no shard holds");
    } else if (!it->is_string() || found->second != it->get<std::string>()) {
      problems.Add("index problems", path.string() + ": weight_map puts " + it.key() + " in " +
                                         it->dump() + ", it is in " + found->second);
    }
  }
  for (const auto& [name, file] : located) {
    if (!map.contains(name)) {
      problems.Add("index problems", path.string() + ": " + name + " (in " + file + ") is not in weight_map");
    }
  }
}

void CheckValues(const Checkpoint& ckpt, ProblemList& problems) {
  const ModelConfig& c = ckpt.config();
  for (const TensorSpec& spec : ckpt.schema()) {
    const TensorView& v = ckpt.Get(spec.name);
    if (spec.role == TensorRole::kHashTable) {
      const int64_t rows = v.Dim(0), k = v.Dim(1);
      std::vector<int64_t> row(k);
      for (int64_t r = 0; r < rows; ++r) {
        std::memcpy(row.data(), v.data + r * k * 8, k * 8);  // views need not be aligned
        std::set<int64_t> distinct(row.begin(), row.end());
        const bool in_range = *distinct.begin() >= 0 && *distinct.rbegin() < c.n_routed_experts;
        if (!in_range || static_cast<int64_t>(distinct.size()) != k) {
          problems.Add("tid2eid problems", *v.file + ": " + spec.name + " row " + std::to_string(r) +
                                               (in_range ? " repeats an expert" : " has an expert outside [0, " +
                                                               std::to_string(c.n_routed_experts) + ")"));
        }
      }
    } else if (spec.dtype == DType::kF32) {
      for (int64_t i = 0; i < v.NumElements(); ++i) {
        float x;
        std::memcpy(&x, v.data + i * 4, 4);
        if (!std::isfinite(x)) {
          problems.Add("non-finite values", *v.file + ": " + spec.name + " holds a non-finite value at element " +
                                                std::to_string(i));
          break;
        }
      }
    }
  }
}

std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Bytes(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (n >= 1024 && u < 4) {
    n /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof(text), u ? "%.2f %s" : "%.0f %s", n, units[u]);
  return text;
}

std::string Printf(const char* format, auto... args) {
  char text[512];
  std::snprintf(text, sizeof(text), format, args...);
  return text;
}

Json KvJson(const KvFootprint& kv) {
  return {{"row_bytes", kv.row_bytes},
          {"indexer_row_bytes", kv.indexer_row_bytes},
          {"bytes_per_token", kv.bytes_per_token},
          {"fixed_bytes", kv.fixed_bytes},
          {"bytes_at_max_context", kv.bytes_at_max_context}};
}

std::string KvText(const char* label, const KvFootprint& kv) {
  return Printf("  %-15s %8.2f B/token (rows %lld B, indexer rows %lld B); fixed %s; %s at max context\n", label,
                kv.bytes_per_token, static_cast<long long>(kv.row_bytes),
                static_cast<long long>(kv.indexer_row_bytes), Bytes(kv.fixed_bytes).c_str(),
                Bytes(kv.bytes_at_max_context).c_str());
}

}  // namespace

ModelSummary SummarizeConfig(const ModelConfig& config, const std::string& source) {
  const std::vector<TensorSpec> schema = ExpectedTensors(config);
  ModelSummary s = Common(config, source, schema);
  for (const TensorSpec& spec : schema) AddDtype(s, spec.dtype, SpecBytes(spec));
  return s;
}

ModelSummary SummarizeCheckpoint(const Checkpoint& ckpt) {
  ModelSummary s = Common(ckpt.config(), ckpt.dir(), ckpt.schema());
  s.from_checkpoint = true;
  for (const auto& shard : ckpt.shards()) {
    for (const auto& [name, view] : shard->tensors()) AddDtype(s, view.dtype, view.bytes);
  }
  ProblemList problems(s.problems);
  for (const std::string& name : ckpt.unexpected()) {
    problems.Add("unexpected tensors", *ckpt.Get(name).file + ": unexpected tensor " + name +
                                           " (not in the schema of this config)");
  }
  CheckIndex(ckpt, s.weight_bytes, problems);
  CheckValues(ckpt, problems);
  problems.Finish();
  return s;
}

Json SummaryToJson(const ModelSummary& s) {
  const ModelConfig& c = s.config;
  Json j;
  j["source"] = s.source;
  j["kind"] = s.from_checkpoint ? "checkpoint" : "config";
  j["config"] = c.ToJson();
  Json layers = Json::array();
  for (const LayerSummary& l : s.layers) {
    layers.push_back({{"name", l.name},
                      {"compress_ratio", l.compress_ratio},
                      {"attention", l.attention},
                      {"routing", l.routing},
                      {"rope_theta", l.rope_theta},
                      {"yarn", l.yarn}});
  }
  j["layers"] = layers;
  Json by_dtype = Json::object();
  for (const auto& [name, u] : s.by_dtype) by_dtype[name] = {{"tensors", u.tensors}, {"bytes", u.bytes}};
  j["tensors"] = {{"count", s.tensor_count}, {"bytes", s.weight_bytes}, {"by_dtype", by_dtype}};
  j["parameters"] = {{"total", s.parameters}, {"mtp", s.mtp_parameters}, {"active_per_token", s.active_parameters}};
  j["decode_bytes_per_token"] = {{"total", s.decode.total},
                                 {"dense", s.decode.dense},
                                 {"routed_experts", s.decode.routed_experts},
                                 {"embedding_row", s.decode.embedding_row},
                                 {"head", s.decode.head},
                                 {"mtp_step", s.decode.mtp_step}};
  j["kv_cache"] = {{"max_context", c.max_position_embeddings},
                   {"reference_bf16", KvJson(s.kv_reference)},
                   {"exact_compact", KvJson(s.kv_compact)}};
  j["problems"] = s.problems;
  return j;
}

std::string SummaryToText(const ModelSummary& s) {
  const ModelConfig& c = s.config;
  std::string t = Printf("%s (%s)\n", s.source.c_str(), s.from_checkpoint ? "checkpoint" : "config only");
  t += Printf("model: vocab %lld, hidden %lld, %lld layers + %lld MTP, %lld heads x %lld (%lld RoPE), q_lora %lld, "
              "o_groups %lld x %lld, window %lld\n",
              (long long)c.vocab_size, (long long)c.hidden_size, (long long)c.num_hidden_layers,
              (long long)c.num_nextn_predict_layers, (long long)c.num_attention_heads, (long long)c.head_dim,
              (long long)c.qk_rope_head_dim, (long long)c.q_lora_rank, (long long)c.o_groups,
              (long long)c.o_lora_rank, (long long)c.sliding_window);
  t += Printf("  experts: %lld routed (top %lld, width %lld) + %lld shared, %lld hash layers, scale %g, "
              "swiglu_limit %g\n",
              (long long)c.n_routed_experts, (long long)c.num_experts_per_tok, (long long)c.moe_intermediate_size,
              (long long)c.n_shared_experts, (long long)c.num_hash_layers, c.routed_scaling_factor, c.swiglu_limit);
  t += Printf("  indexer %lld heads x %lld, top %lld; hc %lld streams, %lld Sinkhorn iterations; max positions %lld\n",
              (long long)c.index_n_heads, (long long)c.index_head_dim, (long long)c.index_topk, (long long)c.hc_mult,
              (long long)c.hc_sinkhorn_iters, (long long)c.max_position_embeddings);
  if (c.rope_scaling.yarn) {
    t += Printf("  rope_theta %g, compress_rope_theta %g with YaRN factor %g from %lld (beta %g/%g)\n", c.rope_theta,
                c.compress_rope_theta, c.rope_scaling.factor,
                (long long)c.rope_scaling.original_max_position_embeddings, c.rope_scaling.beta_fast,
                c.rope_scaling.beta_slow);
  } else {
    t += Printf("  rope_theta %g, compress_rope_theta %g, no YaRN\n", c.rope_theta, c.compress_rope_theta);
  }
  t += "layer schedule:\n";
  for (const LayerSummary& l : s.layers) {
    const std::string attention =
        l.compress_ratio ? l.attention + " (ratio " + std::to_string(l.compress_ratio) + ")" : l.attention;
    t += Printf("  %-10s %-17s %-6s routing  theta %g%s\n", l.name.c_str(), attention.c_str(), l.routing.c_str(),
                l.rope_theta, l.yarn ? " + YaRN" : "");
  }
  t += Printf("tensors: %s, %s bytes (%s)%s\n", Grouped(s.tensor_count).c_str(), Grouped(s.weight_bytes).c_str(),
              Bytes(s.weight_bytes).c_str(), s.from_checkpoint ? " in the files" : " by the schema");
  for (const auto& [name, u] : s.by_dtype) {
    t += Printf("  %-8s %8s tensors %20s bytes\n", name.c_str(), Grouped(u.tensors).c_str(), Grouped(u.bytes).c_str());
  }
  t += Printf("parameters: %s total (%s in MTP blocks), %s active per decoded token\n", Grouped(s.parameters).c_str(),
              Grouped(s.mtp_parameters).c_str(), Grouped(s.active_parameters).c_str());
  const DecodeRead& d = s.decode;
  t += Printf("decode reads per token: %s (dense %s, routed experts %s, embedding row %s, head %s)\n",
              Bytes(d.total).c_str(), Bytes(d.dense).c_str(), Bytes(d.routed_experts).c_str(),
              Bytes(d.embedding_row).c_str(), Bytes(d.head).c_str());
  if (d.mtp_step) t += Printf("  one MTP step reads %s more\n", Bytes(d.mtp_step).c_str());
  t += Printf("KV cache per sequence (max context %s tokens):\n", Grouped(c.max_position_embeddings).c_str());
  t += KvText("reference bf16", s.kv_reference);
  t += KvText("exact compact", s.kv_compact);
  if (s.problems.empty()) {
    t += s.from_checkpoint ? "problems: none found\n" : "problems: not checked (config only)\n";
  } else {
    t += Printf("problems (%zu):\n", s.problems.size());
    for (const std::string& p : s.problems) t += "  " + p + "\n";
  }
  return t;
}

}  // namespace dsv4
