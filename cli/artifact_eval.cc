#include "cli/artifact_eval.h"

#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/dgsr_network.h"
#include "model/sasrec_network.h"
#include "model/scoring_model.h"
#include "trainer/sasrec_trainer.h"
#include "trainer/trainer.h"

namespace dgsr::cli {

absl::Status CheckModelPredatesSnapshot(const std::string& path, const JsonObject& metadata,
                                        const store::StoreInfo& snapshot) {
  const std::optional<std::string> store_id = metadata.GetString("store_id");
  const std::optional<double> events = metadata.GetNumber("snapshot_events");
  if (!store_id || !events) {
    DGSR_LOG(WARN) << "the artifact does not say which snapshot it was trained on; cannot check that it predates this one"
                   << Kv("artifact", path);
  }
  if (store_id && *store_id != snapshot.store_id) {
    return absl::InvalidArgumentError(absl::StrCat(path, " was trained on store '", *store_id,
                                                   "', this snapshot is of store '", snapshot.store_id,
                                                   "': its ids would mean other users and items"));
  }
  if (events && *events > static_cast<double>(snapshot.num_events)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, " was trained on a snapshot of ", static_cast<int64_t>(*events), " events, newer than this one (",
        snapshot.num_events, "): it may have trained on this snapshot's validation and test interactions"));
  }
  return absl::OkStatus();
}

absl::StatusOr<trainer::EvalResult> EvaluateArtifact(const std::string& model_path, const trainer::Split& split,
                                                     trainer::SplitPart part, const trainer::EvalOptions& options,
                                                     const std::string& device_name, bool cold_users,
                                                     const store::StoreInfo* snapshot) {
  ASSIGN_OR_RETURN(torch::Device device, model::ParseDevice(device_name));
  ASSIGN_OR_RETURN(model::NetworkKind kind, model::ArtifactNetwork(model_path));
  if (kind == model::NetworkKind::kDgsr) {
    ASSIGN_OR_RETURN(auto net, model::DgsrNetwork::Load(model_path, device));
    if (snapshot != nullptr) RETURN_IF_ERROR(CheckModelPredatesSnapshot(model_path, net->metadata(), *snapshot));
    if (net->config().num_users != split.num_users || net->config().num_items != split.num_items) {
      DGSR_LOG(WARN) << "the snapshot's id spaces differ from the model's: ids the model does not know map to the zero embedding, "
                      "items the snapshot does not know are not ranked"
                     << Kv("model_users", net->config().num_users) << Kv("snapshot_users", split.num_users)
                     << Kv("model_items", net->config().num_items) << Kv("snapshot_items", split.num_items);
    }
    if (cold_users) net->set_own_user_embedding(false);
    return trainer::Evaluate(*net, split, part, options);
  }
  ASSIGN_OR_RETURN(auto sasrec, model::SasRecNetwork::Load(model_path, device));
  if (snapshot != nullptr) RETURN_IF_ERROR(CheckModelPredatesSnapshot(model_path, sasrec->metadata(), *snapshot));
  if (cold_users) {
    DGSR_LOG(INFO) << "--cold_users changes nothing for SASRec+: it has no user embeddings";
  }
  return trainer::EvaluateSasRec(*sasrec, split, part, options);
}

}  // namespace dgsr::cli
