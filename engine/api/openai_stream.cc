#include "engine/api/openai_stream.h"

#include <algorithm>
#include <string_view>

namespace dsv4::api {

using Json = nlohmann::ordered_json;

ResponseStream::ResponseStream(const ApiRequest& request, const Tokenizer& tokenizer, ResponseIds ids)
    : endpoint_(request.endpoint),
      tools_(request.tools),
      usage_(request.stream_usage),
      ids_(std::move(ids)),
      collector_(request, tokenizer) {}

Json ResponseStream::Chunk(Json choice) const {
  const bool chat = endpoint_ == Endpoint::kChatCompletions;
  return {{"id", ids_.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", ids_.created},
          {"model", ids_.model},
          {"choices", choice.is_null() ? Json::array() : Json::array({std::move(choice)})}};
}

Json ResponseStream::Delta(Json delta, const Json& finish) const {
  if (endpoint_ == Endpoint::kCompletions) {
    return Chunk({{"index", 0}, {"text", delta.value("content", "")}, {"logprobs", nullptr}, {"finish_reason", finish}});
  }
  return Chunk({{"index", 0}, {"delta", std::move(delta)}, {"logprobs", nullptr}, {"finish_reason", finish}});
}

std::vector<Json> ResponseStream::Add(const GenerationUpdate& update) {
  std::vector<Json> out;
  collector_.Add(update);
  if (!started_ && endpoint_ == Endpoint::kChatCompletions) {
    out.push_back(Delta({{"role", "assistant"}, {"content", ""}}));
  }
  started_ = true;
  if (!update.reasoning.empty()) out.push_back(Delta({{"reasoning_content", update.reasoning}}));
  if (!update.content.empty()) Answer(update.content, out);
  if (collector_.finished()) Finish(out);
  return out;
}

void ResponseStream::Answer(const std::string& text, std::vector<Json>& out) {
  const auto send = [&](const std::string& piece) {
    streamed_ += piece;
    out.push_back(Delta({{"content", piece}}));
  };
  if (!tools_) return send(text);
  held_ += text;
  if (collector_.dsml_generated()) return;  // from the DSML token on, everything waits for the end
  // The end may begin a tool-call block: "\n\n<" then the DSML token (or
  // "<" alone, which the parser also takes), so it waits for what follows.
  size_t keep = 0;
  for (size_t n = std::min<size_t>(3, held_.size()); n > 0 && keep == 0; --n) {
    const std::string_view tail = std::string_view(held_).substr(held_.size() - n);
    if (std::string_view("\n\n<").starts_with(tail) || tail == "<") keep = n;
  }
  if (held_.size() == keep) return;
  send(held_.substr(0, held_.size() - keep));
  held_.erase(0, held_.size() - keep);
}

void ResponseStream::Finish(std::vector<Json>& out) {
  const FinishReason reason = collector_.finish();
  if (reason != FinishReason::kStop && reason != FinishReason::kLength) {
    out.push_back(ErrorObject(500, collector_.error().empty() ? "the request was cancelled" : collector_.error()));
    return;
  }
  Json finish = FinishReasonName(reason);
  if (tools_) {
    bool calls = false;
    const Json message = collector_.Message(ids_.id, &calls);
    // What the non-streaming answer holds beyond what was streamed.
    const std::string content = message["content"].is_string() ? message["content"].get<std::string>() : "";
    const std::string rest = calls ? (content.starts_with(streamed_) ? content.substr(streamed_.size()) : "") : held_;
    if (!rest.empty()) out.push_back(Delta({{"content", rest}}));
    if (calls) {
      Json tool_calls = message["tool_calls"];
      for (size_t i = 0; i < tool_calls.size(); ++i) tool_calls[i]["index"] = i;
      out.push_back(Delta({{"tool_calls", tool_calls}}));
      if (reason == FinishReason::kStop) finish = "tool_calls";
    }
    held_.clear();
  }
  out.push_back(Delta(Json::object(), finish));
  if (usage_) {
    Json chunk = Chunk(nullptr);
    chunk["usage"] = UsageObject(collector_.usage());
    out.push_back(std::move(chunk));
  }
}

}  // namespace dsv4::api
