#include "cli/store_flags.h"

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

// --store itself is defined once for the whole binary (absl flags are process-global); today that
// definition lives in cmd_train.cc.
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
