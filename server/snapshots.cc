#include "server/snapshots.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace dgsr::server {
namespace fs = std::filesystem;

absl::StatusOr<SnapshotTaken> Snapshots::Take() {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(MakeDirs(options_.dir));
  int64_t stamp = absl::ToUnixMicros(absl::Now());
  std::error_code ec;
  while (fs::exists(absl::StrCat(options_.dir, "/", stamp), ec)) ++stamp;
  SnapshotTaken taken;
  taken.path = absl::StrCat(options_.dir, "/", stamp);
  RETURN_IF_ERROR(store_->CreateSnapshot(taken.path, &taken.contents));
  std::vector<int64_t> present;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory(ec) && absl::SimpleAtoi(entry.path().filename().string(), &v)) present.push_back(v);
  }
  std::sort(present.begin(), present.end());
  for (size_t i = 0; i + static_cast<size_t>(std::max(1, options_.keep)) < present.size(); ++i) {
    if (present[i] == stamp) continue;
    const std::string old = absl::StrCat(options_.dir, "/", present[i]);
    fs::remove_all(old, ec);
    if (ec) {
      DGSR_LOG(WARN) << "could not delete an old snapshot" << Kv("path", old) << Kv("error", ec.message());
      continue;
    }
    taken.removed.push_back(old);
  }
  DGSR_LOG(INFO) << "snapshot taken" << Kv("path", taken.path) << Kv("events", taken.contents.num_events)
                 << Kv("removed", taken.removed.size());
  return taken;
}

}  // namespace dgsr::server
