#include "model/model_dir.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace dgsr::model {
namespace fs = std::filesystem;

std::vector<int64_t> ListVersions(const std::string& base) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    int64_t v = 0;
    if (entry.is_directory(ec) && absl::SimpleAtoi(entry.path().filename().string(), &v) && v > 0 &&
        fs::exists(entry.path() / "model.pt", ec)) {
      versions.push_back(v);
    }
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::string VersionDir(const std::string& base, int64_t version) { return absl::StrCat(base, "/", version); }

absl::StatusOr<std::string> LatestVersionDir(const std::string& base) {
  std::vector<int64_t> versions = ListVersions(base);
  if (versions.empty()) return absl::NotFoundError(absl::StrCat("no model version in ", base));
  return VersionDir(base, versions.back());
}

absl::StatusOr<std::string> ResolveModelPath(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no model path given");
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  if (!fs::is_directory(path, ec)) return absl::NotFoundError(absl::StrCat("no model at ", path));
  if (fs::exists(path + "/model.pt", ec)) return path + "/model.pt";
  ASSIGN_OR_RETURN(std::string dir, LatestVersionDir(path));
  return dir + "/model.pt";
}

}  // namespace dgsr::model
