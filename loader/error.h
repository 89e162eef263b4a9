// One exception type for every user-facing failure: bad files, bad input,
// I/O errors. The message is the one line the CLI prints, so it names the
// file, tensor or field at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace dsv4 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace dsv4
