#include "cli/output_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "loader/error.h"

namespace dsv4::cli {

void WriteFileAtomically(const std::string& path, const std::string& contents) {
  std::string temp = path + ".XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) throw Error(path + ": cannot write (" + std::strerror(errno) + ")");
  const bool written = ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  if (::close(fd) != 0 || !written) {
    std::remove(temp.c_str());
    throw Error(path + ": write failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) {
    std::remove(temp.c_str());
    throw Error(path + ": cannot write (" + ec.message() + ")");
  }
}

}  // namespace dsv4::cli
