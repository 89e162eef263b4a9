// A request's runtime updates as OpenAI streaming chunks (the `data:` lines
// of server-sent events): `chat.completion.chunk` with `reasoning_content`
// and `content` deltas, or `text_completion` chunks. The text a stream
// carries equals the non-streaming response's: with tools, the answer is
// held back from the DSML token on (and a "\n\n<" that may open its block),
// and at the end either the parsed `tool_calls` or the held text follow.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/api/openai_response.h"

namespace dsv4::api {

class ResponseStream {
 public:
  ResponseStream(const ApiRequest& request, const Tokenizer& tokenizer, ResponseIds ids);

  // The chunks this update adds (none, one or several); after the last
  // update, the chunk with finish_reason and, with include_usage, one with
  // the usage.
  std::vector<nlohmann::ordered_json> Add(const GenerationUpdate& update);

  const ResponseCollector& collector() const { return collector_; }

 private:
  nlohmann::ordered_json Chunk(nlohmann::ordered_json choice) const;
  nlohmann::ordered_json Delta(nlohmann::ordered_json delta, const nlohmann::ordered_json& finish = nullptr) const;
  // Streams `text` of the answer, keeping back what may turn out to belong to
  // a tool-call block.
  void Answer(const std::string& text, std::vector<nlohmann::ordered_json>& out);
  void Finish(std::vector<nlohmann::ordered_json>& out);

  Endpoint endpoint_;
  bool tools_;
  bool usage_;
  ResponseIds ids_;
  ResponseCollector collector_;
  bool started_ = false;
  std::string streamed_;  // answer text sent so far
  std::string held_;      // answer text kept back
};

}  // namespace dsv4::api
