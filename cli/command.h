// Subcommand registry: each cli/cmd_*.cc registers one command with a static
// RegisterCommand object; main.cc dispatches on argv[1].
#pragma once

#include <string>
#include <vector>

namespace dsv4::cli {

using CommandFn = int (*)(int argc, char** argv);  // argv[0] is "dsv4 <name>"

struct Command {
  std::string name;
  std::string summary;
  CommandFn run;
};

std::vector<Command>& Commands();

struct RegisterCommand {
  RegisterCommand(const char* name, const char* summary, CommandFn run) {
    Commands().push_back({name, summary, run});
  }
};

}  // namespace dsv4::cli
