// SafetensorsFile on an arbitrary file: the 8-byte header length, the JSON
// header and the data. Bad files must throw dsv4::Error; a file that opens
// must describe tensors that lie inside the mapping and add up.
#include <cstdint>
#include <string>

#include "loader/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

using namespace dsv4;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::MemFile file;
  const std::string& path = file.Write(data, size);
  fuzz::Expect("SafetensorsFile", [&] {
    SafetensorsFile st(path);
    fuzz::Check(st.size() == size, "size() is the file size");
    for (const auto& [name, view] : st.tensors()) {
      fuzz::Check(view.name == name, "the view is named by its key");
      uint64_t elements = 1;
      for (const int64_t d : view.shape) {
        fuzz::Check(d >= 0, "tensor " + name + " has a negative dimension");
        elements *= static_cast<uint64_t>(d);
      }
      fuzz::Check(view.bytes == elements * DTypeSize(view.dtype), "bytes = elements x dtype size for " + name);
      fuzz::Check(view.file_offset <= size && view.bytes <= size - view.file_offset,
                  "tensor " + name + " lies inside the file");
      if (view.bytes) {
        // Touch both ends: a view outside the mapping faults here.
        volatile uint8_t sink = view.data[0];
        sink = view.data[view.bytes - 1];
        (void)sink;
      }
    }
  });
  return 0;
}
