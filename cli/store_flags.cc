#include "cli/store_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, store, "", "graph store directory (offline commands snapshot it first; it must not be in use by a server)");
ABSL_FLAG(std::string, snapshot, "", "existing store snapshot directory (train, eval, bench train)");
ABSL_FLAG(std::string, durability, "group_commit",
          "sync (fsync per batch) or group_commit (background WAL fsync every 10 ms)");

namespace dgsr::cli {

absl::StatusOr<store::GraphStoreOptions> StoreOptionsFromFlags() {
  store::GraphStoreOptions options;
  options.path = absl::GetFlag(FLAGS_store);
  if (options.path.empty()) return absl::InvalidArgumentError("--store is required");
  const std::string durability = absl::GetFlag(FLAGS_durability);
  if (durability == "sync") {
    options.durability = store::Durability::kSync;
  } else if (durability == "group_commit") {
    options.durability = store::Durability::kGroupCommit;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--durability must be sync or group_commit, not '", durability, "'"));
  }
  return options;
}

}  // namespace dgsr::cli
