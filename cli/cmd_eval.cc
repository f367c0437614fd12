// dgsr eval: measures an exported model (or the popularity baseline) on a store snapshot under
// the honest protocol (trainer/evaluation.h).
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "cli/artifact_eval.h"
#include "cli/snapshot_source.h"
#include "cli/common_flags.h"
#include "cli/store_flags.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/model_dir.h"
#include "model/torch_runtime.h"
#include "trainer/trainer.h"

ABSL_FLAG(std::string, artifact, "", "model artifact (model.pt; DGSR or SASRec+) or versioned model directory (its latest version); empty with --baseline=popularity");
ABSL_FLAG(std::string, part, "test", "which samples: test or valid");
ABSL_FLAG(std::string, baseline, "", "evaluate a baseline instead of --artifact: popularity");
ABSL_FLAG(bool, json, false, "print the result as one JSON object (keys hit@10, ndcg@10, full_hit@10, full_ndcg@10, ...)");
ABSL_FLAG(int, eval_threads, 0, "libtorch threads (0: all cores)");
ABSL_FLAG(bool, cold_users, false,
          "DGSR: score every sample's user as one the model has never seen (its own embedding unused, its "
          "sub-graph as is): the quality a user who joined after training gets");
ABSL_FLAG(bool, force, false,
          "evaluate even a model trained on another store or on a newer snapshot than this one (its figures are "
          "then not honest: it may have trained on the test interactions)");
ABSL_DECLARE_FLAG(uint64_t, eval_seed);
ABSL_DECLARE_FLAG(int64_t, max_eval_samples);
ABSL_DECLARE_FLAG(bool, full_ranking);

namespace dgsr::cli {
namespace {

absl::StatusOr<std::string> ResolveModel(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("--artifact is required (or --baseline=popularity)");
  return model::ResolveModelPath(path);
}

void PrintTable(const std::string& name, const trainer::EvalResult& r) {
  std::printf("%s: %lld samples, %.1f s\n", name.c_str(), static_cast<long long>(r.sampled.count()), r.seconds);
  std::printf("  sampled (100 negatives for the right user, ties against the target)\n");
  std::printf("    Hit@5 %.2f  Hit@10 %.2f  Hit@20 %.2f  NDCG@5 %.2f  NDCG@10 %.2f  NDCG@20 %.2f\n",
              100 * r.sampled.Hit(5), 100 * r.sampled.Hit(10), 100 * r.sampled.Hit(20), 100 * r.sampled.Ndcg(5),
              100 * r.sampled.Ndcg(10), 100 * r.sampled.Ndcg(20));
  std::printf("  full ranking over all items (the user's items before the sample time excluded)\n");
  std::printf("    Hit@10 %.2f  NDCG@10 %.2f  Hit@20 %.2f  NDCG@20 %.2f\n", 100 * r.full.Hit(10),
              100 * r.full.Ndcg(10), 100 * r.full.Hit(20), 100 * r.full.Ndcg(20));
  std::printf("  by history length (paper Fig. 8):   n      Hit@10  NDCG@10  full Hit@10  full NDCG@10\n");
  for (int g = 0; g < trainer::RankingMetrics::kGroups; ++g) {
    const auto& s = r.sampled.Group(g);
    const auto& f = r.full.Group(g);
    std::printf("    %-30s %6lld  %6.2f  %7.2f  %11.2f  %12.2f\n", trainer::RankingMetrics::GroupName(g),
                static_cast<long long>(s.count()), 100 * s.Hit(10), 100 * s.Ndcg(10), 100 * f.Hit(10), 100 * f.Ndcg(10));
  }
}

absl::Status Eval() {
  const std::string part_name = absl::GetFlag(FLAGS_part);
  if (part_name != "test" && part_name != "valid") return absl::InvalidArgumentError("--part must be test or valid");
  const auto part = part_name == "test" ? trainer::SplitPart::kTest : trainer::SplitPart::kValid;
  const std::string baseline = absl::GetFlag(FLAGS_baseline);
  if (!baseline.empty() && baseline != "popularity") return absl::InvalidArgumentError("--baseline must be popularity");
  ASSIGN_OR_RETURN(SnapshotSource source, OpenSnapshot(absl::GetFlag(FLAGS_store), absl::GetFlag(FLAGS_snapshot)));
  ASSIGN_OR_RETURN(trainer::Split split, SplitFromFlags(*source.store));
  trainer::EvalOptions options;
  options.seed = absl::GetFlag(FLAGS_eval_seed);
  options.max_samples = absl::GetFlag(FLAGS_max_eval_samples);
  options.full_ranking = absl::GetFlag(FLAGS_full_ranking);
  options.show_progress = !absl::GetFlag(FLAGS_json);
  trainer::EvalResult result;
  std::string name;
  if (!baseline.empty()) {
    result = trainer::EvaluatePopularity(split, part, options);
    name = "popularity";
  } else {
    ASSIGN_OR_RETURN(std::string path, ResolveModel(absl::GetFlag(FLAGS_artifact)));
    model::ConfigureTorchRuntime(absl::GetFlag(FLAGS_eval_threads));
    // A DGSR artifact or the SASRec+ baseline's (the file says which): both run in the same harness.
    const store::StoreInfo info = source.store->info();
    ASSIGN_OR_RETURN(result, EvaluateArtifact(path, split, part, options, absl::GetFlag(FLAGS_device),
                                              absl::GetFlag(FLAGS_cold_users),
                                              absl::GetFlag(FLAGS_force) ? nullptr : &info));
    name = path;
  }
  if (absl::GetFlag(FLAGS_json)) {
    JsonObject j = result.ToJson("");
    j.Set("model", name).Set("part", part_name).Set("eval_seed", static_cast<int64_t>(options.seed));
    j.Set("negatives", options.negatives).Set("ties", "count against the target");
    j.Set("full_ranking_excludes", "the user's items before the sample time");
    j.Set("snapshot", source.dir).Set("seconds", result.seconds).Set("cold_users", absl::GetFlag(FLAGS_cold_users));
    for (int g = 0; g < trainer::RankingMetrics::kGroups; ++g) {
      const std::string key = absl::StrCat("group_", trainer::RankingMetrics::GroupName(g), "_");
      j.Set(key + "n", result.sampled.Group(g).count());
      j.Set(key + "hit@10", result.sampled.Group(g).Hit(10)).Set(key + "ndcg@10", result.sampled.Group(g).Ndcg(10));
      j.Set(key + "full_hit@10", result.full.Group(g).Hit(10)).Set(key + "full_ndcg@10", result.full.Group(g).Ndcg(10));
    }
    std::printf("%s\n", j.Dump().c_str());
  } else {
    PrintTable(absl::StrCat(name, " on ", part_name), result);
  }
  return absl::OkStatus();
}

}  // namespace

int RunEval(const std::vector<std::string>& args) {
  if (!args.empty()) {
    std::fprintf(stderr, "dgsr eval: unexpected argument '%s'\n", args[0].c_str());
    return 2;
  }
  absl::Status s = Eval();
  if (!s.ok()) {
    std::fprintf(stderr, "dgsr eval: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace dgsr::cli
