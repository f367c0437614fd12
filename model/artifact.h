// Model artifacts: a TorchScript module saved with its configuration and metadata as JSON extra
// files, so that the file is self-describing and loads with torch::jit::load (C++) and
// torch.jit.load (Python). Shared by DgsrNetwork and SasRecNetwork.
//
//   const ArtifactFormat kFormat{"DGSR", "dgsr/config.json", "dgsr/metadata.json", 1,
//                                {"forward", "score_all"}};
//   ASSIGN_OR_RETURN(LoadedArtifact a, LoadArtifact(path, torch::kCPU, kFormat));
//   RETURN_IF_ERROR(SaveArtifact(module, path, kFormat, config_json, metadata_json));
//
// Load errors: NotFound (no file), DataLoss (not loadable: garbage, truncated), InvalidArgument
// (a TorchScript file of another kind, a bad config or metadata JSON, another format version, a
// missing method). Messages name the path. libtorch exceptions never escape.
#ifndef DGSR_MODEL_ARTIFACT_H_
#define DGSR_MODEL_ARTIFACT_H_

#include <torch/script.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json.h"

namespace dgsr::model {

struct ArtifactFormat {
  std::string kind;           // "DGSR", "SASRec": used in error messages
  std::string config_file;    // extra-file name of the config JSON
  std::string metadata_file;  // extra-file name of the metadata JSON
  int version = 1;            // the newest version read, stored in the config as "format_version"
  int oldest_version = 1;     // the oldest version still read
  std::vector<std::string> methods;  // methods the module must have
};

struct LoadedArtifact {
  torch::jit::Module module;  // in eval mode
  JsonObject config;          // includes "format_version"
  JsonObject metadata;        // empty if the artifact has none
};

[[nodiscard]] absl::StatusOr<LoadedArtifact> LoadArtifact(const std::string& path, const torch::Device& device,
                                                          const ArtifactFormat& format);

// Writes `module` with `config` (plus "format_version": `version`, or format.version when 0) and
// `metadata` (not atomically: the trainer's exporter publishes atomically). A network writes the
// oldest version that describes it, so binaries that predate an opt-in feature still load the
// artifacts that do not use it, and refuse those that do. Internal on failure.
[[nodiscard]] absl::Status SaveArtifact(const torch::jit::Module& module, const std::string& path,
                                        const ArtifactFormat& format, JsonObject config,
                                        const JsonObject& metadata, int version = 0);

// Warm start: copies every parameter of `from` into the parameter of the same name in `to`. Both
// must have the same parameter names and shapes, except the id-indexed tables named in
// `id_rows` (name -> rows of `from` to copy, at most the rows of either): only their first rows
// are copied and the rest of `to`'s table is left as it is. InvalidArgument naming the first
// parameter that does not fit; nothing is copied then.
[[nodiscard]] absl::Status CopyParametersInto(const torch::jit::Module& from, torch::jit::Module& to,
                                              const std::map<std::string, int64_t>& id_rows);

// The first line of a libtorch error, without its C++ backtrace.
std::string TorchErrorMessage(const c10::Error& e);

}  // namespace dgsr::model

#endif  // DGSR_MODEL_ARTIFACT_H_
