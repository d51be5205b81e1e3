#pragma once

// `epmdxctl completion bash`: a bash completion script generated from the command-line
// definition itself, so that it never lists an option the parser does not know.

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

namespace epmdx::ctl {

struct CompletionHints {
  /// Per command, the values of its -o/--output.
  std::map<std::string, std::vector<std::string>> outputs;
  /// Options whose value is a file name.
  std::vector<std::string> file_options;
  /// Commands whose positional argument is a node name (completed from `list -o names`).
  std::vector<std::string> node_commands;
  /// Per command, the fixed values of its positional argument.
  std::map<std::string, std::vector<std::string>> positionals;
  /// Per option (any command's), its fixed values: --partial warn abort.
  std::map<std::string, std::vector<std::string>> option_values;
  /// Per option, the arguments of the epmdxctl command whose output lists its values, one a
  /// line: --source from "sources -o names" (as node names come from "list -o names").
  std::map<std::string, std::string> option_commands;
};

std::string bashCompletion(const CLI::App& app, const CompletionHints& hints);

}  // namespace epmdx::ctl
