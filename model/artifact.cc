#include "model/artifact.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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
  if (!version || static_cast<int>(*version) < format.oldest_version || static_cast<int>(*version) > format.version) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": unsupported ", format.kind, " artifact format version (expected ",
        format.oldest_version == format.version ? absl::StrCat(format.version)
                                                : absl::StrCat(format.oldest_version, " to ", format.version),
        ")"));
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
                          JsonObject config, const JsonObject& metadata, int version) {
  config.Set("format_version", version > 0 ? version : format.version);
  torch::jit::ExtraFilesMap extra{{format.config_file, config.Dump()}, {format.metadata_file, metadata.Dump()}};
  try {
    module.save(path, extra);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("cannot save model to ", path, ": ", TorchErrorMessage(e)));
  }
  return absl::OkStatus();
}

}  // namespace dgsr::model

namespace dgsr::model {

absl::Status CopyParametersInto(const torch::jit::Module& from, torch::jit::Module& to,
                                const std::map<std::string, int64_t>& id_rows) {
  std::map<std::string, torch::Tensor> source;
  for (const auto& p : from.named_parameters(/*recurse=*/true)) source.emplace(p.name, p.value);
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (destination, source rows)
  size_t matched = 0;
  for (const auto& p : to.named_parameters(/*recurse=*/true)) {
    auto it = source.find(p.name);
    if (it == source.end()) {
      return absl::InvalidArgumentError(absl::StrCat("warm start: the older model has no parameter '", p.name, "'"));
    }
    ++matched;
    const torch::Tensor& src = it->second;
    const torch::Tensor& dst = p.value;
    auto shape = [](const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); };
    const auto rows = id_rows.find(p.name);
    if (rows == id_rows.end()) {
      if (shape(src) != shape(dst)) {
        return absl::InvalidArgumentError(
            absl::StrCat("warm start: parameter '", p.name, "' has shape [", absl::StrJoin(shape(src), ","),
                         "] in the older model and [", absl::StrJoin(shape(dst), ","), "] here"));
      }
      copies.emplace_back(dst, src);
      continue;
    }
    const int64_t n = rows->second;
    if (src.dim() != dst.dim() || src.dim() < 1 || n < 0 || n > src.size(0) || n > dst.size(0) ||
        src.sizes().slice(1) != dst.sizes().slice(1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("warm start: table '", p.name, "' of shape [", absl::StrJoin(shape(src), ","),
                       "] cannot give its first ", n, " rows to one of shape [", absl::StrJoin(shape(dst), ","), "]"));
    }
    copies.emplace_back(dst.narrow(0, 0, n), src.narrow(0, 0, n));
  }
  if (matched != source.size()) {
    return absl::InvalidArgumentError("warm start: the older model has parameters this network does not");
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.device()));
  return absl::OkStatus();
}

}  // namespace dgsr::model
