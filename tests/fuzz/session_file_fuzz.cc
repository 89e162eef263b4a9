// LoadSession, PeekSessionTokens and SessionChecksumHolds on an arbitrary
// session file, into a fresh SequenceState of a small model
// (session_fuzz_model.h) in the numerics the file's header names. Bad files
// must throw dsv4::Error (LoadSession) or be refused quietly (the other two).
// A file that loads must be exactly what SaveSession writes for the state it
// gave.
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "engine/model/session_file.h"
#include "tests/fuzz/fuzz_support.h"
#include "tests/fuzz/session_fuzz_model.h"

using namespace dsv4;
namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const ModelConfig& config = fuzz::SessionModelConfig();
  const std::string& path = file.Write(data, size);
  uint32_t numerics_field = 0;
  if (size >= 16) std::memcpy(&numerics_field, data + 12, 4);
  const Numerics numerics = static_cast<Numerics>(numerics_field & 1);

  const bool checksum = SessionChecksumHolds(path);
  const std::vector<int32_t> peeked = PeekSessionTokens(path, fuzz::kSessionModelIdentity, numerics);
  SequenceState state(config, numerics);
  SessionContents contents;
  bool loaded = false;
  fuzz::Expect("LoadSession", [&] {
    contents = LoadSession(path, state, fuzz::kSessionModelIdentity);
    loaded = true;
  });
  if (!loaded) return 0;
  fuzz::Check(checksum, "a session that loads passes SessionChecksumHolds");
  fuzz::Check(peeked == contents.tokens, "PeekSessionTokens gives the loaded tokens");
  fuzz::Check(static_cast<int64_t>(contents.tokens.size()) == state.length(), "tokens match the state's length");
  // Saving what was loaded gives the same bytes.
  const fs::path copy = fs::temp_directory_path() / ("dsv4-fuzz-session." + std::to_string(::getpid()));
  SaveSession(copy.string(), state, contents, fuzz::kSessionModelIdentity);
  std::ifstream in(copy, std::ios::binary);
  const std::vector<char> saved((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(copy);
  fuzz::Check(saved.size() == size && std::memcmp(saved.data(), data, size) == 0,
              "SaveSession of a loaded session gives the file back");
  return 0;
}
