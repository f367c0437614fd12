// The `dgsr` command-line tool is one binary with subcommands. Each subcommand lives in its own
// cli/cmd_<name>.cc, defines its absl flags there, and registers itself in subcommands.cc.
//
// `dgsr <name> --help` lists only the flags defined in that subcommand's files. Every flag can
// also come from the environment as DGSR_<FLAG_NAME_IN_UPPER_CASE> (the command line wins), and
// from `--flagfile=FILE`.
#ifndef DGSR_CLI_SUBCOMMAND_H_
#define DGSR_CLI_SUBCOMMAND_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/commandlineflag.h"

namespace dgsr::cli {

struct Subcommand {
  std::string_view name;
  std::string_view summary;  // One line for `dgsr --help`.
  std::string_view usage;    // Paragraph for `dgsr <name> --help`.
  // Source files (matched by suffix, e.g. "cli/cmd_train.cc") whose flags this subcommand reads.
  std::vector<std::string_view> flag_files;
  // Runs with the positional arguments left after flag parsing; returns the exit code.
  int (*run)(const std::vector<std::string>& args);
};

// All subcommands, in the order `dgsr --help` lists them.
const std::vector<Subcommand>& AllSubcommands();

// The flags a subcommand reads (those defined in its flag_files), sorted by name.
std::vector<absl::CommandLineFlag*> FlagsOf(const Subcommand& cmd);
// The same for the subcommand called `name` (empty if there is none).
std::vector<absl::CommandLineFlag*> FlagsOf(std::string_view name);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_SUBCOMMAND_H_
