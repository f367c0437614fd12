// How the offline subcommands (train, eval, bench train) get their data: always from a store
// snapshot, never from the live database.
//   --snapshot=DIR  an existing snapshot (GraphStore::CreateSnapshot's directory), or
//   --store=DIR     a store not in use by a server: a fresh snapshot of it is taken into
//                   <DIR>.snapshots/<unix time> and that snapshot is opened.
// And how they split it: --cross_user_time (trainer/split.h's CrossUserTime) says what "before t"
// means across users; auto treats times 1..len in every sequence as positions (order-only data).
// List "cli/snapshot_source.cc" in a subcommand's flag_files so that its --help shows the flag.
#ifndef DGSR_CLI_SNAPSHOT_SOURCE_H_
#define DGSR_CLI_SNAPSHOT_SOURCE_H_

#include <memory>
#include <string>

#include "absl/flags/declare.h"
#include "absl/status/statusor.h"
#include "store/graph_store.h"
#include "trainer/split.h"

ABSL_DECLARE_FLAG(std::string, cross_user_time);

namespace dgsr::cli {

struct SnapshotSource {
  std::unique_ptr<store::GraphStore> store;  // read-only
  std::string dir;
};

[[nodiscard]] absl::StatusOr<SnapshotSource> OpenSnapshot(const std::string& store_dir,
                                                          const std::string& snapshot_dir);

// trainer::BuildSplit of the store's graph in the --cross_user_time mode (logged, with the split's
// sizes). InvalidArgument for an unknown mode, and as BuildSplit.
[[nodiscard]] absl::StatusOr<trainer::Split> SplitFromFlags(const store::GraphStore& store);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_SNAPSHOT_SOURCE_H_
