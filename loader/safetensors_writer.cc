#include "loader/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "loader/error.h"

namespace dsv4 {
namespace {

constexpr size_t kBufferBytes = size_t{4} << 20;

uint64_t CheckedMul(uint64_t a, uint64_t b, const std::string& what) {
  uint64_t product;
  if (__builtin_mul_overflow(a, b, &product)) throw Error(what + " is too large (more than 2^64 bytes)");
  return product;
}

std::string ErrnoText() { return std::strerror(errno); }

}  // namespace

uint64_t TensorBytes(const TensorEntry& tensor) {
  uint64_t bytes = DTypeSize(tensor.dtype);
  for (int64_t d : tensor.shape) {
    if (d < 0) throw Error("tensor " + tensor.name + " has a negative dimension");
    bytes = CheckedMul(bytes, static_cast<uint64_t>(d), "tensor " + tensor.name);
  }
  return bytes;
}

SafetensorsLayout LayOutSafetensors(std::vector<TensorEntry> tensors) {
  std::set<std::string> names;
  for (const TensorEntry& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") throw Error("invalid tensor name \"" + t.name + "\"");
    if (!names.insert(t.name).second) throw Error("tensor " + t.name + " is listed twice");
  }
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return DTypeSize(a.dtype) > DTypeSize(b.dtype);
  });

  SafetensorsLayout layout;
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  for (const TensorEntry& t : tensors) {
    const uint64_t begin = layout.data_bytes;
    const uint64_t bytes = TensorBytes(t);
    if (__builtin_add_overflow(begin, bytes, &layout.data_bytes)) throw Error("tensor data exceeds 2^64 bytes");
    layout.offsets.push_back(begin);
    header[t.name] = {{"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"data_offsets", {begin, layout.data_bytes}}};
  }
  layout.header = header.dump();
  layout.header.append((8 - layout.header.size() % 8) % 8, ' ');
  layout.tensors = std::move(tensors);
  return layout;
}

SafetensorsWriter::SafetensorsWriter(const std::string& path, std::vector<TensorEntry> tensors)
    : path_(path), layout_(LayOutSafetensors(std::move(tensors))) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot create (" + ErrnoText() + ")");
  buffer_.reserve(kBufferBytes);
  uint8_t length[8];
  const uint64_t header_len = layout_.header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(header_len >> (8 * i));  // little-endian
  try {
    WriteOut(length, 8);
    WriteOut(reinterpret_cast<const uint8_t*>(layout_.header.data()), layout_.header.size());
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void SafetensorsWriter::CheckRoomFor(uint64_t bytes) const {
  if (fd_ < 0) throw Error(path_ + ": append after Finish");
  if (bytes > layout_.data_bytes - data_written_) {
    throw Error(path_ + ": " + std::to_string(data_written_ + bytes) + " data bytes appended, the header declares " +
                std::to_string(layout_.data_bytes));
  }
}

void SafetensorsWriter::Append(const void* data, size_t bytes) {
  CheckRoomFor(bytes);
  const auto* p = static_cast<const uint8_t*>(data);
  data_written_ += bytes;
  if (buffer_.size() + bytes > kBufferBytes) Flush();
  if (bytes >= kBufferBytes) {
    WriteOut(p, bytes);
  } else {
    buffer_.insert(buffer_.end(), p, p + bytes);
  }
}

void SafetensorsWriter::AppendZeros(uint64_t bytes) {
  CheckRoomFor(bytes);
  Flush();
  if (::lseek(fd_, static_cast<off_t>(bytes), SEEK_CUR) < 0) throw Error(path_ + ": seek failed (" + ErrnoText() + ")");
  data_written_ += bytes;
}

void SafetensorsWriter::Finish() {
  if (fd_ < 0) throw Error(path_ + ": Finish called twice");
  if (data_written_ != layout_.data_bytes) {
    throw Error(path_ + ": only " + std::to_string(data_written_) + " of " + std::to_string(layout_.data_bytes) +
                " data bytes were written");
  }
  Flush();
  // A hole at the end has no write to extend the file over it.
  if (::ftruncate(fd_, static_cast<off_t>(layout_.FileBytes())) != 0) {
    throw Error(path_ + ": cannot set the file's size (" + ErrnoText() + ")");
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) throw Error(path_ + ": write failed on close (" + ErrnoText() + ")");
}

void SafetensorsWriter::Flush() {
  if (buffer_.empty()) return;
  WriteOut(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void SafetensorsWriter::WriteOut(const uint8_t* data, size_t bytes) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd_, data, std::min<size_t>(bytes, size_t{1} << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(path_ + ": write failed (" + (n < 0 ? ErrnoText() : std::string("no progress")) + ")");
    data += n;
    bytes -= static_cast<size_t>(n);
  }
}

void WriteWholeFile(const std::string& path, const std::string& contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create (" + ErrnoText() + ")");
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? ErrnoText() : "no progress";
      ::close(fd);
      throw Error(path + ": write failed (" + why + ")");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::close(fd) != 0) throw Error(path + ": write failed on close (" + ErrnoText() + ")");
}

void WriteShardIndex(const std::string& path, uint64_t total_size,
                     const std::map<std::string, std::string>& weight_map) {
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total_size}};
  index["weight_map"] = nlohmann::ordered_json::object();
  for (const auto& [tensor, file] : weight_map) index["weight_map"][tensor] = file;
  WriteWholeFile(path, index.dump(2) + "\n");
}

void WriteConfigJson(const std::string& path, const ModelConfig& config) {
  WriteWholeFile(path, config.ToJson().dump(2) + "\n");
}

}  // namespace dsv4
