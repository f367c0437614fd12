// Evaluating an exported artifact (DGSR in any preset, or SASRec+; the file says which) on a split
// under the honest protocol: shared by `dgsr eval` and the trainer's regression gate.
#ifndef DGSR_CLI_ARTIFACT_EVAL_H_
#define DGSR_CLI_ARTIFACT_EVAL_H_

#include <string>

#include "absl/status/statusor.h"
#include "trainer/evaluation.h"

namespace dgsr::cli {

// Loads `model_path` on `device` and evaluates it on `part` of `split`. With `cold_users`, DGSR
// scores every sample's user as unknown (no effect on SASRec+). The artifact may predate the
// split's newest users and items (they map to the zero embedding; logged).
[[nodiscard]] absl::StatusOr<trainer::EvalResult> EvaluateArtifact(const std::string& model_path,
                                                                   const trainer::Split& split, trainer::SplitPart part,
                                                                   const trainer::EvalOptions& options,
                                                                   const std::string& device, bool cold_users = false);

}  // namespace dgsr::cli

#endif  // DGSR_CLI_ARTIFACT_EVAL_H_
