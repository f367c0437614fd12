#include "cli/snapshot_source.h"

#include <filesystem>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

ABSL_FLAG(std::string, cross_user_time, "auto",
          "what 'before t' means across users when splitting: timestamps (another user's event is visible "
          "if strictly earlier), order_only (times are positions: every other user's training events are "
          "visible, never a validation or test event; the user's own history is cut at its position), or "
          "auto (order_only when every user's times are 1..len, as the importer writes for the sasrec and hgn "
          "formats; else timestamps)");

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

absl::StatusOr<trainer::Split> SplitFromFlags(const store::GraphStore& store) {
  ASSIGN_OR_RETURN(trainer::CrossUserTime mode, trainer::ParseCrossUserTime(absl::GetFlag(FLAGS_cross_user_time)));
  ASSIGN_OR_RETURN(trainer::Split split, trainer::BuildSplit(store.graph(), mode));
  DGSR_LOG(INFO) << "split" << Kv("cross_user_time", std::string(trainer::CrossUserTimeName(split.cross_user_time)))
                 << Kv("users", split.num_users) << Kv("items", split.num_items)
                 << Kv("interactions", split.num_interactions) << Kv("train", split.train.size())
                 << Kv("valid", split.valid.size()) << Kv("test", split.test.size());
  return split;
}

}  // namespace dgsr::cli
