// Flags several subcommands share (absl flags are process-global, so each is defined once):
// --model_dir (train exports into it; serve and recommend read it), --device and --torch_threads
// (where and on how many threads libtorch runs). List "cli/common_flags.cc" in a subcommand's
// flag_files so that `dgsr <cmd> --help` shows them.
#ifndef DGSR_CLI_COMMON_FLAGS_H_
#define DGSR_CLI_COMMON_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, model_dir);
ABSL_DECLARE_FLAG(std::string, device);
ABSL_DECLARE_FLAG(int, torch_threads);

#endif  // DGSR_CLI_COMMON_FLAGS_H_
