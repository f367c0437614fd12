#include "cli/artifact_eval.h"

#include "common/logging.h"
#include "common/status_macros.h"
#include "model/dgsr_network.h"
#include "model/sasrec_network.h"
#include "model/scoring_model.h"
#include "trainer/sasrec_trainer.h"
#include "trainer/trainer.h"

namespace dgsr::cli {

absl::StatusOr<trainer::EvalResult> EvaluateArtifact(const std::string& model_path, const trainer::Split& split,
                                                     trainer::SplitPart part, const trainer::EvalOptions& options,
                                                     const std::string& device_name, bool cold_users) {
  ASSIGN_OR_RETURN(torch::Device device, model::ParseDevice(device_name));
  ASSIGN_OR_RETURN(model::NetworkKind kind, model::ArtifactNetwork(model_path));
  if (kind == model::NetworkKind::kDgsr) {
    ASSIGN_OR_RETURN(auto net, model::DgsrNetwork::Load(model_path, device));
    if (net->config().num_users != split.num_users || net->config().num_items != split.num_items) {
      DGSR_LOG(WARN) << "the snapshot's id spaces differ from the model's; ids created after training map to the zero embedding"
                     << Kv("model_users", net->config().num_users) << Kv("snapshot_users", split.num_users)
                     << Kv("model_items", net->config().num_items) << Kv("snapshot_items", split.num_items);
    }
    if (cold_users) net->set_own_user_embedding(false);
    return trainer::Evaluate(*net, split, part, options);
  }
  ASSIGN_OR_RETURN(auto sasrec, model::SasRecNetwork::Load(model_path, device));
  if (cold_users) {
    DGSR_LOG(INFO) << "--cold_users changes nothing for SASRec+: it has no user embeddings";
  }
  return trainer::EvaluateSasRec(*sasrec, split, part, options);
}

}  // namespace dgsr::cli
