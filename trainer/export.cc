#include "trainer/export.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace dgsr::trainer {
namespace fs = std::filesystem;

namespace {
// Largest integer-named subdirectory that holds a model.pt, or 0.
int64_t LargestVersion(const std::string& model_dir) {
  int64_t best = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(model_dir, ec)) {
    int64_t v = 0;
    if (entry.is_directory() && absl::SimpleAtoi(entry.path().filename().string(), &v) &&
        fs::exists(entry.path() / "model.pt")) {
      best = std::max(best, v);
    }
  }
  return best;
}
}  // namespace

absl::StatusOr<std::string> LatestVersionDir(const std::string& model_dir) {
  int64_t v = LargestVersion(model_dir);
  if (v == 0) return absl::NotFoundError(absl::StrCat("no model version in ", model_dir));
  return absl::StrCat(model_dir, "/", v);
}

absl::StatusOr<std::string> ExportArtifact(const std::string& model_dir, JsonObject metadata,
                                           const ArtifactWriter& artifact) {
  RETURN_IF_ERROR(MakeDirs(model_dir));
  const int64_t version = LargestVersion(model_dir) + 1;
  const std::string tmp = absl::StrCat(model_dir, "/.tmp-", version, "-", ::getpid());
  const std::string final_dir = absl::StrCat(model_dir, "/", version);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  RETURN_IF_ERROR(MakeDirs(tmp));
  metadata.Set("version", version);
  metadata.Set("created_unix_s", absl::ToUnixSeconds(absl::Now()));
  RETURN_IF_ERROR(artifact(tmp + "/model.pt", metadata));
  RETURN_IF_ERROR(WriteFileAtomic(tmp + "/metadata.json", metadata.Dump() + "\n"));
  RETURN_IF_ERROR(SyncFile(tmp + "/model.pt"));  // written by libtorch, which does not fsync
  RETURN_IF_ERROR(SyncDir(tmp));
  fs::rename(tmp, final_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot publish ", final_dir, ": ", ec.message()));
  RETURN_IF_ERROR(SyncDir(model_dir));
  return final_dir;
}

absl::StatusOr<std::string> ExportModel(const std::string& model_dir, model::DgsrNetwork& network,
                                        JsonObject metadata) {
  JsonObject config = network.config().ToJson();
  for (const auto& [k, v] : config.entries()) {
    std::visit([&](const auto& value) { metadata.Set("config." + k, value); }, v);
  }
  return ExportArtifact(model_dir, std::move(metadata),
                        [&network](const std::string& path, const JsonObject& meta) { return network.Save(path, meta); });
}

}  // namespace dgsr::trainer
