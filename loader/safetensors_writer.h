// Writing checkpoints in the Hugging Face layout: safetensors shards streamed
// tensor by tensor (the header with every offset goes first, so a multi-GB
// shard never has to sit in memory), the shard index and config.json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loader/config.h"
#include "loader/dtype.h"

namespace dsv4 {

struct TensorEntry {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
};

// dtype size x elements; throws dsv4::Error naming the tensor if the product
// does not fit in 64 bits (an absurd configuration, not a real model).
uint64_t TensorBytes(const TensorEntry& tensor);

// Where every tensor of one safetensors file goes. Tensors are ordered by
// element size, largest first (stable otherwise), as the official writer does:
// with the header padded to 8 bytes, every tensor then starts at a multiple of
// its element size in a mapped file, and the data section has no holes (the
// format forbids them).
struct SafetensorsLayout {
  std::vector<TensorEntry> tensors;  // in data order
  std::vector<uint64_t> offsets;     // begin of each tensor in the data section
  std::string header;                // JSON, space-padded to a multiple of 8 bytes
  uint64_t data_bytes = 0;

  uint64_t FileBytes() const { return 8 + header.size() + data_bytes; }
};

// Throws dsv4::Error on a duplicate or empty tensor name.
SafetensorsLayout LayOutSafetensors(std::vector<TensorEntry> tensors);

// Streams one safetensors file. The caller appends the data of layout().tensors
// in that order, in pieces of any size, then calls Finish(). Every I/O failure
// (disk full included) is a dsv4::Error naming the file. The destructor closes
// an unfinished file but never deletes anything: the caller owns the path.
class SafetensorsWriter {
 public:
  SafetensorsWriter(const std::string& path, std::vector<TensorEntry> tensors);
  ~SafetensorsWriter();
  SafetensorsWriter(const SafetensorsWriter&) = delete;
  SafetensorsWriter& operator=(const SafetensorsWriter&) = delete;

  const SafetensorsLayout& layout() const { return layout_; }
  const std::string& path() const { return path_; }
  uint64_t data_written() const { return data_written_; }

  // The next `bytes` of the data section; more than the layout holds is an error.
  void Append(const void* data, size_t bytes);
  // The next `bytes` of the data section, all zero, left as a hole in the
  // file: no disk blocks, no time (a sparse file reads back as zeros).
  void AppendZeros(uint64_t bytes);
  // Checks that the whole data section was written, flushes and closes.
  void Finish();

 private:
  void CheckRoomFor(uint64_t bytes) const;
  void WriteOut(const uint8_t* data, size_t bytes);
  void Flush();

  std::string path_;
  SafetensorsLayout layout_;
  int fd_ = -1;
  uint64_t data_written_ = 0;
  std::vector<uint8_t> buffer_;  // coalesces the many small tensors into large writes
};

// model.safetensors.index.json: {"metadata": {"total_size": N}, "weight_map":
// {tensor: shard file}} with the tensors sorted by name, indent 2, as
// Hugging Face writes it. total_size counts tensor data bytes only.
void WriteShardIndex(const std::string& path, uint64_t total_size,
                     const std::map<std::string, std::string>& weight_map);

// config.json from ModelConfig::ToJson, indent 2.
void WriteConfigJson(const std::string& path, const ModelConfig& config);

// Writes `contents` to `path` (created or truncated); throws naming the file.
void WriteWholeFile(const std::string& path, const std::string& contents);

}  // namespace dsv4
