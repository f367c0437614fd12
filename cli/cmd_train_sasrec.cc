// dgsr train --model=sasrec: trains the SASRec+ baseline on the same split, samples, negatives
// and metrics as DGSR, and exports it as its own TorchScript model. The flags are defined with
// the rest of `dgsr train` in cli/cmd_train.cc.
#include <cstdio>
#include <functional>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "cli/artifact_eval.h"
#include "cli/common_flags.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "store/graph_store.h"
#include "trainer/sasrec_trainer.h"

ABSL_DECLARE_FLAG(std::string, run_dir);
ABSL_DECLARE_FLAG(int, epochs);
ABSL_DECLARE_FLAG(int, patience);
ABSL_DECLARE_FLAG(double, lr_decay);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(uint64_t, eval_seed);
ABSL_DECLARE_FLAG(int64_t, max_eval_samples);
ABSL_DECLARE_FLAG(bool, full_ranking);
ABSL_DECLARE_FLAG(std::string, dataset);
ABSL_DECLARE_FLAG(int, sasrec_max_len);
ABSL_DECLARE_FLAG(int, sasrec_hidden);
ABSL_DECLARE_FLAG(int, sasrec_blocks);
ABSL_DECLARE_FLAG(int, sasrec_heads);
ABSL_DECLARE_FLAG(double, sasrec_dropout);
ABSL_DECLARE_FLAG(double, sasrec_lr);
ABSL_DECLARE_FLAG(double, sasrec_l2);
ABSL_DECLARE_FLAG(int, sasrec_batch_size);
ABSL_DECLARE_FLAG(int64_t, sasrec_max_train_users);

namespace dgsr::cli {

// Prints validation, test and (--popularity) popularity metrics; returns them as JSON
// (cli/cmd_train.cc).
absl::Status PublishRun(JsonObject summary, const store::StoreInfo& info, const trainer::Split& split,
                        const std::function<absl::StatusOr<std::string>(const JsonObject&)>& export_model);
JsonObject ReportEvaluation(const trainer::Split& split, const trainer::EvalResult& valid,
                            const trainer::EvalResult& test, const trainer::EvalOptions& eval);
std::string TrainingSpeedNote(double samples_per_s, double train_seconds);
absl::StatusOr<std::string> WarmStartPath();

// Called by `dgsr train` (cli/cmd_train.cc) when --model=sasrec.
absl::Status TrainSasRecFromFlags(const trainer::Split& split, const store::StoreInfo& info) {
  const absl::Time start = absl::Now();
  model::SasRecConfig config;
  config.num_items = split.num_items;
  config.max_len = absl::GetFlag(FLAGS_sasrec_max_len);
  config.hidden = absl::GetFlag(FLAGS_sasrec_hidden);
  config.blocks = absl::GetFlag(FLAGS_sasrec_blocks);
  config.heads = absl::GetFlag(FLAGS_sasrec_heads);
  config.dropout = absl::GetFlag(FLAGS_sasrec_dropout);
  config.learning_rate = absl::GetFlag(FLAGS_sasrec_lr);
  config.l2 = absl::GetFlag(FLAGS_sasrec_l2);
  config.batch_size = absl::GetFlag(FLAGS_sasrec_batch_size);
  RETURN_IF_ERROR(config.Validate());
  trainer::SasRecTrainOptions opt;
  opt.epochs = absl::GetFlag(FLAGS_epochs);
  opt.patience = absl::GetFlag(FLAGS_patience);
  opt.lr_decay = absl::GetFlag(FLAGS_lr_decay);
  opt.seed = absl::GetFlag(FLAGS_seed);
  opt.torch_threads = absl::GetFlag(FLAGS_torch_threads);
  opt.max_train_users = absl::GetFlag(FLAGS_sasrec_max_train_users);
  opt.eval.seed = absl::GetFlag(FLAGS_eval_seed);
  opt.eval.max_samples = absl::GetFlag(FLAGS_max_eval_samples);
  opt.eval.full_ranking = absl::GetFlag(FLAGS_full_ranking);
  const std::string run_dir = absl::GetFlag(FLAGS_run_dir);
  if (!run_dir.empty()) {
    opt.checkpoint_dir = run_dir + "/checkpoint";
    opt.log_path = run_dir + "/metrics.jsonl";
  }
  DGSR_LOG(INFO) << "training SASRec+" << Kv("config", config.ToJson().Dump());
  ASSIGN_OR_RETURN(const std::string warm_start, WarmStartPath());
  std::unique_ptr<model::SasRecNetwork> warm;
  if (!warm_start.empty()) {
    ASSIGN_OR_RETURN(warm, model::SasRecNetwork::Load(warm_start, torch::kCPU));
    RETURN_IF_ERROR(CheckModelPredatesSnapshot(warm_start, warm->metadata(), info));
    opt.warm_start = warm.get();
  }
  ASSIGN_OR_RETURN(trainer::SasRecTrainResult result, trainer::TrainSasRec(config, split, opt));
  warm.reset();
  std::printf("\nSASRec+ (full softmax CE), checkpoint chosen on validation: epoch %d; %s\n", result.best_epoch,
              TrainingSpeedNote(result.samples_per_second, result.train_seconds).c_str());
  JsonObject summary = ReportEvaluation(split, result.valid, result.test, opt.eval);
  summary.Set("model", "sasrec").Set("best_epoch", result.best_epoch);
  summary.Set("samples_per_s", result.samples_per_second).Set("train_seconds", result.train_seconds);
  summary.Set("wall_seconds", absl::ToDoubleSeconds(absl::Now() - start));
  summary.Set("seed", static_cast<int64_t>(opt.seed)).Set("eval_seed", static_cast<int64_t>(opt.eval.seed));
  summary.Set("dataset", absl::GetFlag(FLAGS_dataset)).Set("lr_decay", opt.lr_decay);
  summary.Set("warm_start", warm_start);
  const JsonObject config_json = config.ToJson();
  for (const auto& [k, v] : config_json.entries()) {
    std::visit([&](const auto& value) { summary.Set("sasrec." + k, value); }, v);
  }
  return PublishRun(std::move(summary), info, split, [&](const JsonObject& metadata) {
    return trainer::ExportSasRec(absl::GetFlag(FLAGS_model_dir), *result.network, metadata);
  });
}

}  // namespace dgsr::cli
