// A read-only, memory-mapped safetensors file. The header is validated in
// full at open time (offsets inside the file, sizes matching dtype x shape,
// no overlaps), so later reads through a TensorView never leave the mapping.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "loader/dtype.h"

namespace dsv4 {

struct TensorView {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t file_offset = 0;  // absolute offset of the data in its file
  const std::string* file = nullptr;

  int64_t NumElements() const;
  int64_t Dim(size_t i) const { return shape.at(i); }
  template <typename T>
  const T* As() const { return reinterpret_cast<const T*>(data); }
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const TensorView* Find(const std::string& name) const;

 private:
  void ParseHeader();

  std::string path_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

}  // namespace dsv4
