#include "trainer/export.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/status_macros.h"
#include "model/model_dir.h"

namespace dgsr::trainer {
namespace fs = std::filesystem;

absl::StatusOr<std::string> ExportArtifact(const std::string& model_dir, JsonObject metadata,
                                           const ArtifactWriter& artifact) {
  RETURN_IF_ERROR(MakeDirs(model_dir));
  ASSIGN_OR_RETURN(FileLock lock, FileLock::Acquire(model_dir + "/.export.lock", /*wait=*/true));
  const std::vector<int64_t> versions = model::ListVersions(model_dir);
  const int64_t version = versions.empty() ? 1 : versions.back() + 1;
  const std::string tmp = absl::StrCat(model_dir, "/.tmp-", version, "-", ::getpid());
  const std::string final_dir = model::VersionDir(model_dir, version);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  RETURN_IF_ERROR(MakeDirs(tmp));
  metadata.Set("version", version);
  metadata.Set("created_unix_s", absl::ToUnixSeconds(absl::Now()));
  RETURN_IF_ERROR(artifact(tmp + "/model.pt", metadata));
  RETURN_IF_ERROR(WriteFileAtomic(tmp + "/metadata.json", metadata.Dump() + "\n"));
  RETURN_IF_ERROR(SyncFile(tmp + "/model.pt"));  // written by libtorch, which does not fsync
  RETURN_IF_ERROR(SyncDir(tmp));
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    fs::remove_all(tmp, ec);
    return absl::AbortedError(absl::StrCat("cannot publish ", final_dir, ": ", std::strerror(err),
                                           " (another exporter wrote that version without the lock?)"));
  }
  RETURN_IF_ERROR(SyncDir(model_dir));
  return final_dir;
}

absl::StatusOr<std::string> ExportModel(const std::string& model_dir, model::DgsrNetwork& network,
                                        JsonObject metadata) {
  metadata.Set("model", "dgsr");
  JsonObject config = network.config().ToJson();
  for (const auto& [k, v] : config.entries()) {
    std::visit([&](const auto& value) { metadata.Set("config." + k, value); }, v);
  }
  return ExportArtifact(model_dir, std::move(metadata),
                        [&network](const std::string& path, const JsonObject& meta) { return network.Save(path, meta); });
}

}  // namespace dgsr::trainer
