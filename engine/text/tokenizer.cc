#include "engine/text/tokenizer.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "engine/text/added_token_matcher.h"
#include "engine/text/bpe_model.h"
#include "engine/text/byte_level.h"
#include "engine/text/split_regex.h"
#include "engine/text/tokenizer_file.h"
#include "engine/text/utf8.h"
#include "loader/error.h"

namespace dsv4 {

using json = nlohmann::json;

namespace {

// Token text -> id for the vocabulary: open addressing over 8-byte slots
// (32 bits of hash, id + 1) with the texts kept by id. Loading resolves
// ~380,000 merge lookups against 128,000 entries; a node-based
// unordered_map spends most of the load time on cache misses there.
class TokenTextIndex {
 public:
  void Build(const std::vector<std::string>& texts, const std::vector<uint8_t>& used) {
    texts_ = &texts;
    size_t capacity = 16;
    while (capacity < texts.size() * 2) capacity *= 2;
    slots_.assign(capacity, 0);
    mask_ = capacity - 1;
    for (size_t id = 0; id < texts.size(); ++id) {
      if (!used[id] || Find(texts[id]) >= 0) continue;  // the first id of a text wins
      const uint64_t hash = Hash(texts[id]);
      size_t slot = hash & mask_;
      while (slots_[slot] != 0) slot = (slot + 1) & mask_;
      slots_[slot] = (hash & 0xFFFFFFFF00000000ull) | (id + 1);
    }
  }

  // Find for many texts at once: the slots and the texts of a batch are
  // fetched from memory together instead of one miss after another.
  void FindMany(const std::string_view* texts, size_t count, int32_t* ids) const {
    constexpr size_t kBatch = 16;
    uint64_t hashes[kBatch];
    int32_t candidates[kBatch];
    for (size_t base = 0; base < count; base += kBatch) {
      const size_t n = std::min(kBatch, count - base);
      for (size_t i = 0; i < n; ++i) {
        hashes[i] = Hash(texts[base + i]);
        __builtin_prefetch(&slots_[hashes[i] & mask_]);
      }
      for (size_t i = 0; i < n; ++i) {
        candidates[i] = -1;
        for (size_t slot = hashes[i] & mask_; slots_[slot] != 0; slot = (slot + 1) & mask_) {
          if ((slots_[slot] >> 32) == (hashes[i] >> 32)) {
            candidates[i] = static_cast<int32_t>((slots_[slot] & 0xFFFFFFFFull) - 1);
            __builtin_prefetch((*texts_)[candidates[i]].data());
            break;
          }
        }
      }
      for (size_t i = 0; i < n; ++i) {
        const std::string_view text = texts[base + i];
        const bool hit = candidates[i] >= 0 && (*texts_)[candidates[i]] == text;
        ids[base + i] = hit ? candidates[i] : Find(text);  // Find settles tag collisions and misses
      }
    }
  }

  int32_t Find(std::string_view text) const {
    const uint64_t hash = Hash(text);
    for (size_t slot = hash & mask_; slots_[slot] != 0; slot = (slot + 1) & mask_) {
      const uint64_t entry = slots_[slot];
      const size_t id = (entry & 0xFFFFFFFFull) - 1;
      if ((entry >> 32) == (hash >> 32) && (*texts_)[id] == text) return static_cast<int32_t>(id);
    }
    return -1;
  }

 private:
  static uint64_t Hash(std::string_view text) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ text.size();
    size_t i = 0;
    for (; i + 8 <= text.size(); i += 8) {
      uint64_t word;
      std::memcpy(&word, text.data() + i, 8);
      h = (h ^ word) * 0xBF58476D1CE4E5B9ull;
      h ^= h >> 29;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, text.data() + i, text.size() - i);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 31);
  }

  const std::vector<std::string>* texts_ = nullptr;
  std::vector<uint64_t> slots_;
  size_t mask_ = 0;
};

}  // namespace

struct Tokenizer::Data {
  std::vector<std::string> token_text;   // by id: the file's text ("" for an unused id)
  std::vector<std::string> token_bytes;  // by id: what decoding writes
  std::vector<uint8_t> id_used;  // not vector<bool>: filled in parallel
  std::unordered_map<std::string, int32_t> added_ids;       // added-token text -> id
  TokenTextIndex vocab_ids;  // vocabulary text (byte-level form) -> id
  // Hugging Face matches added tokens with normalized=false in the raw text
  // first, then those with normalized=true in the gaps (after normalizing,
  // which is the identity here: the normalizer must be empty).
  AddedTokenMatcher raw_added, normalized_added;
  std::vector<SplitRegex> splits;
  std::unique_ptr<BpeModel> bpe;

  void PreTokenize(std::string_view text, std::vector<int32_t>& ids) const {
    PreTokenizeStage(text, 0, SplitRegex::HasCategoryChanges(text), ids);
  }

  void PreTokenizeStage(std::string_view text, size_t stage, bool has_category_changes,
                        std::vector<int32_t>& ids) const {
    if (stage == splits.size()) {
      bpe->EncodePiece(text, ids);
      return;
    }
    splits[stage].ForEachPiece(text, has_category_changes, [&](std::string_view piece) {
      PreTokenizeStage(piece, stage + 1, has_category_changes, ids);
    });
  }
};

namespace {

// Field access with errors that name the file and the field.
class Fields {
 public:
  explicit Fields(const std::string& source) : source_(source) {}

  [[noreturn]] void Fail(const std::string& path, const std::string& message) const {
    throw Error(source_ + ": " + path + " " + message);
  }
  const json& Get(const json& object, const std::string& path, const char* key) const {
    if (!object.is_object() || !object.contains(key)) Fail(path + "." + key, "is missing");
    return object[key];
  }
  std::string String(const json& object, const std::string& path, const char* key) const {
    const json& value = Get(object, path, key);
    if (!value.is_string()) Fail(path + "." + key, "must be a string");
    return value.get<std::string>();
  }
  // Optional boolean (absent or null = `fallback`).
  bool Flag(const json& object, const std::string& path, const char* key, bool fallback) const {
    if (!object.contains(key) || object[key].is_null()) return fallback;
    if (!object[key].is_boolean()) Fail(path + "." + key, "must be true or false");
    return object[key].get<bool>();
  }
  void Require(bool condition, const std::string& path, const std::string& message) const {
    if (!condition) Fail(path, message);
  }

 private:
  const std::string& source_;
};

// object["type"] == name; false, not an exception, when "type" is absent or
// not a string (nlohmann's value("type", "") throws on a non-string).
bool HasType(const json& object, std::string_view name) {
  const auto it = object.find("type");
  return it != object.end() && it->is_string() && it->get_ref<const std::string&>() == name;
}

void CheckNormalizer(const json& rest, const Fields& f) {
  if (!rest.contains("normalizer") || rest["normalizer"].is_null()) return;
  const json& normalizer = rest["normalizer"];
  const bool empty_sequence = normalizer.is_object() && HasType(normalizer, "Sequence") &&
                              normalizer.contains("normalizers") && normalizer["normalizers"].is_array() &&
                              normalizer["normalizers"].empty();
  f.Require(empty_sequence, "normalizer", "is not supported (only none or an empty Sequence)");
}

// pre_tokenizer: Split steps (Regex, Isolated, not inverted), then ByteLevel
// with use_regex=false and add_prefix_space=false (only the byte mapping).
std::vector<SplitRegex> ReadPreTokenizer(const json& rest, const Fields& f) {
  const json& pre = f.Get(rest, "", "pre_tokenizer");
  std::vector<json> steps;
  std::string base = "pre_tokenizer";
  if (pre.is_object() && HasType(pre, "Sequence")) {
    const json& list = f.Get(pre, base, "pretokenizers");
    f.Require(list.is_array(), base + ".pretokenizers", "must be an array");
    steps.assign(list.begin(), list.end());
    base += ".pretokenizers";
  } else {
    steps.push_back(pre);
  }
  std::vector<SplitRegex> splits;
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string path = base + "[" + std::to_string(i) + "]";
    const json& step = steps[i];
    const std::string type = f.String(step, path, "type");
    const bool last = i + 1 == steps.size();
    if (type == "Split") {
      f.Require(!last, path, "must be followed by ByteLevel");
      const json& pattern = f.Get(step, path, "pattern");
      f.Require(pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string(), path + ".pattern",
                "must be {\"Regex\": \"...\"}");
      f.Require(f.String(step, path, "behavior") == "Isolated", path + ".behavior", "is not supported (only Isolated)");
      f.Require(!f.Flag(step, path, "invert", false), path + ".invert", "must be false");
      try {
        splits.emplace_back(pattern["Regex"].get<std::string>());
      } catch (const Error& e) {
        f.Fail(path + ".pattern", e.what());
      }
    } else if (type == "ByteLevel") {
      f.Require(last, path, "ByteLevel must be the last pre-tokenizer");
      f.Require(!f.Flag(step, path, "use_regex", true), path + ".use_regex",
                "must be false (GPT-2's built-in regex is not supported)");
      f.Require(!f.Flag(step, path, "add_prefix_space", true), path + ".add_prefix_space", "must be false");
    } else {
      f.Fail(path + ".type", "\"" + type + "\" is not supported (only Split and ByteLevel)");
    }
  }
  f.Require(!steps.empty() && HasType(steps.back(), "ByteLevel"), base, "must end with ByteLevel");
  return splits;
}

// What the ByteLevel decoder writes for a token: the bytes its characters
// stand for, or its own UTF-8 when some character is outside the alphabet.
std::string DecoderBytes(const std::string& text) {
  std::optional<std::string> bytes = ByteLevelBytes(text);
  return bytes ? std::move(*bytes) : text;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error(path + ": read failed");
  return text.str();
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Data> data) : data_(std::move(data)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::FromFile(const std::string& path) { return FromJson(ReadWholeFile(path), path); }

Tokenizer Tokenizer::FromJson(std::string_view json_text, const std::string& source) {
  TokenizerFile file = ReadTokenizerFile(json_text, source);
  const json& rest = file.rest;
  const Fields f(source);
  auto data = std::make_unique<Data>();

  CheckNormalizer(rest, f);
  data->splits = ReadPreTokenizer(rest, f);
  const json& decoder = f.Get(rest, "", "decoder");
  f.Require(decoder.is_object() && HasType(decoder, "ByteLevel"), "decoder", "must be ByteLevel");

  const json& model = f.Get(rest, "", "model");
  f.Require(model.is_object(), "model", "must be an object");
  f.Require(!model.contains("type") || HasType(model, "BPE"), "model.type", "must be BPE");
  f.Require(file.has_vocab, "model.vocab", "is missing");
  f.Require(file.has_merges, "model.merges", "is missing");
  f.Require(!model.contains("dropout") || model["dropout"].is_null() ||
                (model["dropout"].is_number() && model["dropout"].get<double>() == 0.0),
            "model.dropout", "must be null (BPE dropout is random)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    f.Require(!model.contains(key) || model[key].is_null() || model[key] == "", std::string("model.") + key,
              "is not supported");
  }
  f.Require(!f.Flag(model, "model", "byte_fallback", false), "model.byte_fallback", "must be false");
  const bool ignore_merges = f.Flag(model, "model", "ignore_merges", false);

  // Ids: the vocabulary, then the added tokens (which may reuse vocabulary ids).
  int64_t vocab_size = 0;
  for (const auto& [text, id] : file.vocab) {
    if (id < 0 || id >= INT32_MAX) f.Fail("model.vocab[\"" + text + "\"]", "has id " + std::to_string(id) + " out of range");
    vocab_size = std::max(vocab_size, id + 1);
  }
  const json& added = f.Get(rest, "", "added_tokens");
  f.Require(added.is_array(), "added_tokens", "must be an array");
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json& id = f.Get(added[i], path, "id");
    f.Require(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < INT32_MAX, path + ".id",
              "must be a non-negative integer");
    vocab_size = std::max(vocab_size, id.get<int64_t>() + 1);
  }
  // Tables are indexed by id, so a few bytes of file must not reach a huge id
  // (2^31 would take ~140 GB): ids may leave unused gaps, at most as many
  // unused ids as the file defines tokens.
  const int64_t defined = static_cast<int64_t>(file.vocab.size() + added.size());
  f.Require(vocab_size <= 2 * defined, "model.vocab",
            "and added_tokens reach id " + std::to_string(vocab_size - 1) + " but define only " +
                std::to_string(defined) + " tokens (at most as many unused ids as tokens)");
  data->token_text.resize(vocab_size);
  data->token_bytes.resize(vocab_size);
  data->id_used.resize(vocab_size);
  for (const auto& [text, id] : file.vocab) {
    if (data->id_used[id]) f.Fail("model.vocab[\"" + text + "\"]", "reuses id " + std::to_string(id));
    data->id_used[id] = true;
  }
  auto set_token = [&](int32_t id, std::string text) {
    data->token_bytes[id] = DecoderBytes(text);
    data->token_text[id] = std::move(text);
    data->id_used[id] = true;
  };
  const int64_t vocab_count = static_cast<int64_t>(file.vocab.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < vocab_count; ++i) {
    set_token(static_cast<int32_t>(file.vocab[i].second), std::move(file.vocab[i].first));
  }
  data->vocab_ids.Build(data->token_text, data->id_used);

  for (size_t i = 0; i < added.size(); ++i) {
    const std::string path = "added_tokens[" + std::to_string(i) + "]";
    const json& token = added[i];
    const int32_t id = token["id"].get<int32_t>();
    std::string content = f.String(token, path, "content");
    f.Require(!content.empty(), path + ".content", "must not be empty");
    f.Require(!FindInvalidUtf8(content), path + ".content", "is not valid UTF-8");
    for (const char* flag : {"lstrip", "rstrip", "single_word"}) {
      f.Require(!f.Flag(token, path, flag, false), path + "." + flag, "must be false (not supported)");
    }
    (f.Flag(token, path, "normalized", false) ? data->normalized_added : data->raw_added).Add(content, id);
    data->added_ids[content] = id;
    // An added token that reuses a vocabulary id decodes as the added text
    // (the library looks ids up in the added vocabulary first).
    if (data->id_used[id]) {
      data->token_bytes[id] = DecoderBytes(content);
    } else {
      set_token(id, std::move(content));
    }
  }

  // BPE: every byte needs its token, every merge known tokens.
  std::array<int32_t, 256> byte_ids;
  for (int b = 0; b < 256; ++b) {
    std::string text;
    AppendUtf8(ByteLevelChar(static_cast<uint8_t>(b)), text);
    byte_ids[b] = data->vocab_ids.Find(text);
    if (byte_ids[b] < 0) f.Fail("model.vocab", "lacks the byte-level token \"" + text + "\" of byte " + std::to_string(b));
  }
  // Resolving the merges is ~380,000 lookups, mostly cache misses: batched
  // (see FindMany) and shared by the cores.
  const int64_t merge_count = static_cast<int64_t>(file.merges.size());
  std::vector<BpeModel::Merge> merges(merge_count);
  int64_t first_bad = merge_count;
  constexpr int64_t kBlock = 256;
#pragma omp parallel
  {
    std::vector<std::string> joined(kBlock);
    std::vector<std::string_view> queries(3 * kBlock);
    std::vector<int32_t> found(3 * kBlock);
#pragma omp for schedule(static) reduction(min : first_bad)
    for (int64_t begin = 0; begin < merge_count; begin += kBlock) {
      const int64_t n = std::min(kBlock, merge_count - begin);
      for (int64_t k = 0; k < n; ++k) {
        const auto& [left, right] = file.merges[begin + k];
        joined[k].assign(left).append(right);
        queries[3 * k] = left;
        queries[3 * k + 1] = right;
        queries[3 * k + 2] = joined[k];
      }
      data->vocab_ids.FindMany(queries.data(), 3 * n, found.data());
      for (int64_t k = 0; k < n; ++k) {
        merges[begin + k] = {found[3 * k], found[3 * k + 1], found[3 * k + 2]};
        if (found[3 * k] < 0 || found[3 * k + 1] < 0 || found[3 * k + 2] < 0) first_bad = std::min(first_bad, begin + k);
      }
    }
  }
  if (first_bad < merge_count) {
    const auto& [left, right] = file.merges[first_bad];
    const std::string missing =
        data->vocab_ids.Find(left) < 0 ? left : data->vocab_ids.Find(right) < 0 ? right : left + right;
    f.Fail("model.merges[" + std::to_string(first_bad) + "]",
           "(\"" + left + "\", \"" + right + "\") needs \"" + missing + "\", which is not in model.vocab");
  }
  std::unordered_map<std::string, int32_t> whole_words;
  if (ignore_merges) {
    for (const auto& entry : file.vocab) whole_words.emplace(data->token_bytes[entry.second], static_cast<int32_t>(entry.second));
  }
  data->bpe = std::make_unique<BpeModel>(byte_ids, merges, std::move(whole_words));
  return Tokenizer(std::move(data));
}

void Tokenizer::EncodeAppend(std::string_view text, std::vector<int32_t>& ids) const {
  if (const auto bad = FindInvalidUtf8(text)) {
    throw Error("text is not valid UTF-8 (byte offset " + std::to_string(*bad) + ")");
  }
  const Data& d = *data_;
  auto push_token = [&](int32_t id) { ids.push_back(id); };
  d.raw_added.Split(
      text,
      [&](std::string_view gap) {
        d.normalized_added.Split(gap, [&](std::string_view piece) { d.PreTokenize(piece, ids); }, push_token);
      },
      push_token);
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  EncodeAppend(text, ids);
  return ids;
}

const std::string& Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= VocabSize() || !data_->id_used[id]) {
    throw Error("token id " + std::to_string(id) +
                (id >= 0 && id < VocabSize() ? " is not assigned to any token"
                                             : " is out of range (vocabulary size " + std::to_string(VocabSize()) + ")"));
  }
  return data_->token_bytes[id];
}

std::string Tokenizer::Decode(std::span<const int32_t> ids) const {
  std::string bytes;
  for (const int32_t id : ids) bytes += TokenBytes(id);
  return ReplaceInvalidUtf8(bytes);
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token_text) const {
  const auto added = data_->added_ids.find(std::string(token_text));
  if (added != data_->added_ids.end()) return added->second;
  const int32_t vocab = data_->vocab_ids.Find(token_text);
  if (vocab >= 0) return vocab;
  return std::nullopt;
}

bool Tokenizer::HasToken(int32_t id) const {
  return id >= 0 && id < VocabSize() && data_->id_used[id];
}

std::vector<int32_t> Tokenizer::AddedTokenIds() const {
  std::vector<int32_t> ids;
  for (const auto& [text, id] : data_->added_ids) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

int64_t Tokenizer::VocabSize() const { return static_cast<int64_t>(data_->token_text.size()); }

}  // namespace dsv4
