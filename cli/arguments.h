// Parsing of the argument forms shared by several commands (design.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <cxxopts.hpp>

namespace dsv4::cli {

// "1,2,3" or "@FILE" holding the same (whitespace and newlines allowed in the file).
std::vector<int32_t> ParseIds(const std::string& text, const std::string& option);
// A byte count with an optional K, M or G suffix (powers of 1024).
int64_t ParseBytes(const std::string& text, const std::string& option);
// Parses argv with cxxopts; --help prints the help and exits 0; errors become dsv4::Error.
cxxopts::ParseResult ParseOptions(cxxopts::Options& options, int argc, char** argv);

}  // namespace dsv4::cli
