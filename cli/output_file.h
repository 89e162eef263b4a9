// Files the commands write whole (a saved chat, a benchmark plot).
#pragma once

#include <string>

namespace dsv4::cli {

// Writes beside `path` under a unique name and renames, so neither a failure
// nor another process writing the same file leaves a torn file. (mkstemp
// makes the file private to the user, which suits a conversation.) Errors
// name the path.
void WriteFileAtomically(const std::string& path, const std::string& contents);

}  // namespace dsv4::cli
