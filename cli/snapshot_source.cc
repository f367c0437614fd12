#include "cli/snapshot_source.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace dgsr::cli {

absl::StatusOr<SnapshotSource> OpenSnapshot(const std::string& store_dir, const std::string& snapshot_dir) {
  SnapshotSource source;
  if (!snapshot_dir.empty()) {
    source.dir = snapshot_dir;
  } else if (!store_dir.empty()) {
    if (!std::filesystem::exists(store_dir)) {
      return absl::NotFoundError(absl::StrCat("no store at ", store_dir));
    }
    store::GraphStoreOptions options;
    options.path = store_dir;
    options.create_if_missing = false;
    ASSIGN_OR_RETURN(auto live, store::GraphStore::Open(options));
    source.dir = absl::StrCat(store_dir, ".snapshots/", absl::ToUnixMicros(absl::Now()));
    std::filesystem::create_directories(store_dir + ".snapshots");
    RETURN_IF_ERROR(live->CreateSnapshot(source.dir));
    DGSR_LOG(INFO) << "snapshot taken" << Kv("store", store_dir) << Kv("snapshot", source.dir);
  } else {
    return absl::InvalidArgumentError("give --snapshot=DIR or --store=DIR");
  }
  ASSIGN_OR_RETURN(source.store, store::GraphStore::OpenReadOnly(source.dir));
  return source;
}

}  // namespace dgsr::cli
