// How the offline subcommands (train, eval, bench train) get their data: always from a store
// snapshot, never from the live database.
//   --snapshot=DIR  an existing snapshot (GraphStore::CreateSnapshot's directory), or
//   --store=DIR     a store not in use by a server: a fresh snapshot of it is taken into
//                   <DIR>.snapshots/<unix time> and that snapshot is opened.
#ifndef DGSR_CLI_SNAPSHOT_SOURCE_H_
#define DGSR_CLI_SNAPSHOT_SOURCE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "store/graph_store.h"

namespace dgsr::cli {

struct SnapshotSource {
  std::unique_ptr<store::GraphStore> store;  // read-only
  std::string dir;
};

[[nodiscard]] absl::StatusOr<SnapshotSource> OpenSnapshot(const std::string& store_dir,
                                                          const std::string& snapshot_dir);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_SNAPSHOT_SOURCE_H_
