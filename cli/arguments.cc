#include "cli/arguments.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "loader/error.h"

namespace dsv4::cli {

std::vector<int32_t> ParseIds(const std::string& text, const std::string& option) {
  std::string body = text;
  if (!text.empty() && text[0] == '@') {
    std::ifstream in(text.substr(1));
    if (!in) throw Error(option + ": cannot read " + text.substr(1));
    std::stringstream s;
    s << in.rdbuf();
    body = s.str();
  }
  std::vector<int32_t> ids;
  size_t i = 0;
  auto skip_space = [&] {
    while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
  };
  skip_space();
  while (i < body.size()) {
    size_t start = i;
    int64_t value = 0;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) {
      value = value * 10 + (body[i] - '0');
      if (value > INT32_MAX) throw Error(option + ": token id too large near \"" + body.substr(start, 12) + "\"");
      ++i;
    }
    if (i == start) throw Error(option + ": expected a token id at \"" + body.substr(start, 12) + "\"");
    ids.push_back(static_cast<int32_t>(value));
    skip_space();
    if (i < body.size()) {
      if (body[i] != ',') throw Error(option + ": expected ',' at \"" + body.substr(i, 12) + "\"");
      ++i;
      skip_space();
      if (i == body.size()) throw Error(option + ": trailing ','");
    }
  }
  return ids;
}

int64_t ParseBytes(const std::string& text, const std::string& option) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  std::string suffix(end);
  double multiplier = 1;
  if (suffix == "K" || suffix == "k" || suffix == "KiB") multiplier = 1024.0;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB") multiplier = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") multiplier = 1024.0 * 1024 * 1024;
  else if (!suffix.empty()) throw Error(option + ": \"" + text + "\" is not a byte count (use e.g. 512M or 4G)");
  if (end == text.c_str() || !(value >= 0)) throw Error(option + ": \"" + text + "\" is not a byte count");
  // 2^63 itself does not fit: the cast of anything from there up is undefined.
  if (!(value * multiplier < 9223372036854775808.0)) {
    throw Error(option + ": \"" + text + "\" is too large (at most 8E bytes)");
  }
  return static_cast<int64_t>(value * multiplier);
}

cxxopts::ParseResult ParseOptions(cxxopts::Options& options, int argc, char** argv) {
  options.add_options()("h,help", "Print this help");
  try {
    auto result = options.parse(argc, argv);
    if (result.count("help")) {
      std::cout << options.help() << std::endl;
      std::exit(0);
    }
    return result;
  } catch (const cxxopts::exceptions::exception& e) {
    throw Error(e.what());
  }
}

}  // namespace dsv4::cli
