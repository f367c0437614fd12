// Flags shared by every subcommand that opens a graph store (import, synth, train, serve, ...).
// absl flags are process-global, so each is defined exactly once in the binary: --store,
// --snapshot and --durability here; synth's --seed in cmd_train.cc. List "cli/store_flags.cc" in a
// subcommand's flag_files so that `dgsr <cmd> --help` shows them.
#ifndef DGSR_CLI_STORE_FLAGS_H_
#define DGSR_CLI_STORE_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "store/graph_store.h"

ABSL_DECLARE_FLAG(std::string, store);
ABSL_DECLARE_FLAG(std::string, snapshot);
ABSL_DECLARE_FLAG(std::string, durability);

namespace dgsr::cli {

// GraphStoreOptions from --store and --durability (sync | group_commit). InvalidArgument if
// --store is empty or --durability unknown.
absl::StatusOr<store::GraphStoreOptions> StoreOptionsFromFlags();

}  // namespace dgsr::cli

#endif  // DGSR_CLI_STORE_FLAGS_H_
