#include "model/artifact.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace dgsr::model {

std::string TorchErrorMessage(const c10::Error& e) {
  std::string what = e.what_without_backtrace();
  return what.substr(0, what.find('\n'));
}

absl::StatusOr<LoadedArtifact> LoadArtifact(const std::string& path, const torch::Device& device,
                                            const ArtifactFormat& format) {
  if (!std::filesystem::exists(path)) return absl::NotFoundError(absl::StrCat("no model artifact at ", path));
  torch::jit::ExtraFilesMap extra{{format.config_file, ""}, {format.metadata_file, ""}};
  LoadedArtifact a;
  try {
    a.module = torch::jit::load(path, device, extra);
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot load model artifact ", path, ": ", TorchErrorMessage(e)));
  }
  if (extra[format.config_file].empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is a TorchScript file but not a ", format.kind,
                                                   " artifact (no ", format.config_file, ")"));
  }
  auto config = JsonObject::Parse(extra[format.config_file]);
  if (!config.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": bad config: ", config.status().message()));
  auto version = config->GetNumber("format_version");
  if (!version || static_cast<int>(*version) != format.version) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unsupported ", format.kind,
                                                   " artifact format version (expected ", format.version, ")"));
  }
  for (const std::string& method : format.methods) {
    if (!a.module.find_method(method)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": artifact lacks method ", method));
    }
  }
  if (!extra[format.metadata_file].empty()) {
    auto metadata = JsonObject::Parse(extra[format.metadata_file]);
    if (!metadata.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": bad metadata: ", metadata.status().message()));
    }
    a.metadata = *std::move(metadata);
  }
  a.config = *std::move(config);
  a.module.eval();
  return a;
}

absl::Status SaveArtifact(const torch::jit::Module& module, const std::string& path, const ArtifactFormat& format,
                          JsonObject config, const JsonObject& metadata) {
  config.Set("format_version", format.version);
  torch::jit::ExtraFilesMap extra{{format.config_file, config.Dump()}, {format.metadata_file, metadata.Dump()}};
  try {
    module.save(path, extra);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save model to ", path, ": ", TorchErrorMessage(e)));
  }
  return absl::OkStatus();
}

}  // namespace dgsr::model
