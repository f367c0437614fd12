// Versioned model directories, the one layout the trainer publishes into and the server watches
// (TensorFlow Serving's "base path" convention):
//
//   <base>/<version>/model.pt        the TorchScript artifact (its config and metadata inside)
//   <base>/<version>/metadata.json   the same metadata as plain JSON, for people and tools
//
// A version is a positive integer directory name; it is complete once model.pt is in it, which
// the exporter guarantees by renaming a finished temporary directory into place. Anything else
// in <base> (temporary ".tmp-*" directories, the export lock) is ignored. Plain C++, no libtorch.
//
//   for (int64_t v : ListVersions("/models/games")) ...          // ascending
//   ASSIGN_OR_RETURN(std::string dir, LatestVersionDir("/models/games"));
//
// Thread-safe (stateless; reads the file system).
#ifndef DGSR_MODEL_MODEL_DIR_H_
#define DGSR_MODEL_MODEL_DIR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace dgsr::model {

// The complete versions in `base`, ascending. Empty if there are none or `base` does not exist.
std::vector<int64_t> ListVersions(const std::string& base);

// "<base>/<version>".
std::string VersionDir(const std::string& base, int64_t version);

// The directory of the largest complete version; NotFound naming `base` if there is none.
[[nodiscard]] absl::StatusOr<std::string> LatestVersionDir(const std::string& base);

// Resolves what a user passes as a model: a model.pt file, a version directory (holding
// model.pt), or a base directory (its latest version). Returns the model.pt path; NotFound if
// none of these exist.
[[nodiscard]] absl::StatusOr<std::string> ResolveModelPath(const std::string& path);

}  // namespace dgsr::model

#endif  // DGSR_MODEL_MODEL_DIR_H_
