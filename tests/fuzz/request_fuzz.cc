// The server's request body: parsed as `dsv4 serve` parses it (nlohmann,
// exceptions as 400s, at most 4,096 messages), then api::ParseRequest for
// /v1/chat/completions and /v1/completions. ParseRequest documents
// RequestError for every bad request; anything else (a plain dsv4::Error
// included) would be a 500 in the server and end a batch job, so it is a
// finding.
#include <cstdint>

#include "tests/fuzz/request_defaults.h"

using namespace dsv4;
using Json = nlohmann::ordered_json;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Json body;
  try {
    body = Json::parse(fuzz::AsText(data, size));
  } catch (const Json::exception&) {
    return 0;  // the server answers 400
  }
  if (body.is_object() && body.contains("messages") && body["messages"].is_array() &&
      body["messages"].size() > 4096) {
    return 0;  // the server's --max-messages refusal
  }
  fuzz::ParseRequestChecked(api::Endpoint::kChatCompletions, body);
  fuzz::ParseRequestChecked(api::Endpoint::kCompletions, body);
  return 0;
}
