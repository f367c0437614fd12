// Publishing a trained model into a versioned model directory, which the server watches:
//   <model_dir>/<version>/model.pt        the TorchScript artifact (config inside)
//   <model_dir>/<version>/metadata.json   config, id-space sizes, snapshot id and cut-off time,
//                                         validation and test metrics, version, creation time
// (the layout of model/model_dir.h, which the server reads). Versions are increasing integers. A
// version directory appears atomically: it is written under a temporary name, fsynced, and renamed
// into place, so a reader never sees half a model. Exporters serialize on an flock of
// <model_dir>/.export.lock, so two trainers exporting at once get different versions; the rename
// also refuses to replace an existing version (renameat2 RENAME_NOREPLACE), so not even a writer
// that ignores the lock can overwrite one.
#ifndef DGSR_TRAINER_EXPORT_H_
#define DGSR_TRAINER_EXPORT_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "model/dgsr_network.h"

namespace dgsr::trainer {

// Writes `artifact(path, metadata)` as model.pt, and metadata.json beside it, into a new version
// (one above the largest present), atomically; returns its directory. `metadata` gains "version"
// and "created_unix_s" before the artifact is written. Any model type publishes through this.
using ArtifactWriter = std::function<absl::Status(const std::string& path, const JsonObject& metadata)>;
[[nodiscard]] absl::StatusOr<std::string> ExportArtifact(const std::string& model_dir, JsonObject metadata,
                                                         const ArtifactWriter& artifact);

// ExportArtifact for a DGSR network, with its config recorded as "config.<field>" metadata.
[[nodiscard]] absl::StatusOr<std::string> ExportModel(const std::string& model_dir,
                                                      model::DgsrNetwork& network,
                                                      JsonObject metadata);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_EXPORT_H_
