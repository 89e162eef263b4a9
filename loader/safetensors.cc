#include "loader/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "loader/error.h"
#include "loader/mapped_files.h"

namespace dsv4 {

int64_t TensorView::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(path + ": not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ < 8) {
    ::close(fd_);
    throw Error(path + ": truncated safetensors file (" + std::to_string(size_) + " bytes)");
  }
  void* map = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
  if (map == MAP_FAILED) {
    ::close(fd_);
    throw Error(path + ": mmap failed (" + std::strerror(errno) + ")");
  }
  base_ = static_cast<uint8_t*>(map);
  try {
    ParseHeader();
  } catch (...) {
    ::munmap(base_, size_);
    ::close(fd_);
    throw;
  }
  RegisterMappedFile(base_, size_, path_);
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) UnregisterMappedFile(base_);
  if (base_) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
}

const TensorView* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

void SafetensorsFile::ParseHeader() {
  uint64_t header_len = 0;
  std::memcpy(&header_len, base_, 8);
  if (header_len > size_ - 8) {
    throw Error(path_ + ": header length " + std::to_string(header_len) +
                " runs past the end of the file (" + std::to_string(size_) + " bytes): truncated or not safetensors");
  }
  const char* text = reinterpret_cast<const char*>(base_ + 8);
  nlohmann::json header = nlohmann::json::parse(text, text + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) throw Error(path_ + ": header is not a JSON object");
  const size_t data_start = 8 + header_len;
  const size_t data_size = size_ - data_start;

  std::vector<std::pair<size_t, size_t>> ranges;
  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const std::string& tensor = name;  // a lambda cannot capture a structured binding before clang 16
    auto fail = [&](const std::string& why) { throw Error(path_ + ": tensor " + tensor + ": " + why); };
    if (!entry.is_object()) fail("header entry is not an object");
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) fail("missing dtype");
    if (shape_it == entry.end() || !shape_it->is_array()) fail("missing shape");
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      fail("missing data_offsets");
    }
    TensorView view;
    view.name = name;
    auto dtype = ParseDType(dtype_it->get<std::string>());
    if (!dtype) fail("unknown dtype \"" + dtype_it->get<std::string>() + "\"");
    view.dtype = *dtype;
    uint64_t elements = 1;
    for (const auto& d : *shape_it) {
      if (!d.is_number_unsigned()) fail("shape has a non-integer or negative dimension");
      uint64_t dim = d.get<uint64_t>();
      // Each dimension too: after a 0, a huge one would not grow `elements` but turn negative as int64.
      if (dim > (uint64_t{1} << 50) || (dim != 0 && elements > (uint64_t{1} << 50) / dim)) {
        fail("shape is absurdly large");
      }
      elements *= dim;
      view.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : *offsets_it) {
      if (!o.is_number_unsigned()) fail("data_offsets are not non-negative integers");
    }
    uint64_t begin = (*offsets_it)[0].get<uint64_t>(), end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      fail("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
           ") run past the end of the data (" + std::to_string(data_size) + " bytes): file truncated or header lies");
    }
    if (end - begin != elements * DTypeSize(view.dtype)) {
      fail("data_offsets cover " + std::to_string(end - begin) + " bytes but " + dtype_it->get<std::string>() +
           " x " + shape_it->dump() + " needs " + std::to_string(elements * DTypeSize(view.dtype)));
    }
    view.data = base_ + data_start + begin;
    view.bytes = end - begin;
    view.file_offset = data_start + begin;
    view.file = &path_;
    if (view.bytes) ranges.emplace_back(begin, end);
    tensors_.emplace(name, std::move(view));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      throw Error(path_ + ": tensor data ranges overlap at byte " + std::to_string(ranges[i].first));
    }
  }
}

}  // namespace dsv4
