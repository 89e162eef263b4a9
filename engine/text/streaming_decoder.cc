#include "engine/text/streaming_decoder.h"

#include "engine/text/utf8.h"

namespace dsv4 {

std::string StreamingDecoder::Push(int32_t id) {
  pending_ += tokenizer_->TokenBytes(id);
  const size_t hold = IncompleteUtf8Suffix(pending_);
  std::string text = ReplaceInvalidUtf8(std::string_view(pending_).substr(0, pending_.size() - hold));
  pending_.erase(0, pending_.size() - hold);
  return text;
}

std::string StreamingDecoder::Finish() {
  std::string text = ReplaceInvalidUtf8(pending_);
  pending_.clear();
  return text;
}

}  // namespace dsv4
