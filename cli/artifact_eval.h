// Evaluating an exported artifact (DGSR in any preset, or SASRec+; the file says which) on a split
// under the honest protocol: shared by `dgsr eval` and the trainer's regression gate.
#ifndef DGSR_CLI_ARTIFACT_EVAL_H_
#define DGSR_CLI_ARTIFACT_EVAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "store/graph_store.h"
#include "trainer/evaluation.h"

namespace dgsr::cli {

// A model measured on a snapshot, or warm-started from on it, must come from the same store (else
// its ids mean other users and items) and from a snapshot no newer than it (else this snapshot's
// validation and test interactions may have been trained on). InvalidArgument naming the artifact
// otherwise. Judged from the artifact's metadata ("store_id", "snapshot_events", which `dgsr
// train` records); an artifact without them (a run's checkpoint file) cannot be checked: logged.
[[nodiscard]] absl::Status CheckModelPredatesSnapshot(const std::string& model_path, const JsonObject& metadata,
                                                      const store::StoreInfo& snapshot);

// Loads `model_path` on `device` and evaluates it on `part` of `split`. With `cold_users`, DGSR
// scores every sample's user as unknown (no effect on SASRec+). The artifact may predate the
// split's newest users and items (they map to the zero embedding; logged). With `snapshot` (the
// split's source) the artifact must pass CheckModelPredatesSnapshot first.
[[nodiscard]] absl::StatusOr<trainer::EvalResult> EvaluateArtifact(const std::string& model_path,
                                                                   const trainer::Split& split, trainer::SplitPart part,
                                                                   const trainer::EvalOptions& options,
                                                                   const std::string& device, bool cold_users = false,
                                                                   const store::StoreInfo* snapshot = nullptr);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_ARTIFACT_EVAL_H_
