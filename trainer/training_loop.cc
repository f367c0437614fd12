#include "trainer/training_loop.h"

#include <torch/torch.h>

#include <algorithm>

#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace dgsr::trainer {

absl::StatusOr<LoopResult> RunTrainingLoop(TrainingTask& task, const LoopOptions& options) {
  RETURN_IF_ERROR(CheckLrDecay(options.lr_decay));
  ASSIGN_OR_RETURN(std::unique_ptr<RunCheckpoint> ck, RunCheckpoint::Open(options.checkpoint_dir, options.temp_prefix));
  RunState run = ck->state();
  if (ck->resumed()) {
    RETURN_IF_ERROR(task.Resume(ck->network_path(), ck->optimizer_path(), ck->dir()));
    DGSR_LOG(INFO) << "resuming" << Kv("model", options.model.empty() ? "dgsr" : options.model)
                   << Kv("checkpoint", ck->dir()) << Kv("next_epoch", run.next_epoch);
  } else {
    RETURN_IF_ERROR(task.Start());
  }
  RETURN_IF_ERROR(ck->TrimMetricsLog(options.log_path));

  LoopResult result;
  int64_t total_samples = 0;
  for (int epoch = run.next_epoch; epoch < options.epochs; ++epoch) {
    if (ShouldStop(run, options.patience)) break;
    torch::manual_seed(EpochSeed(options.seed, epoch));
    EpochStats stats;
    stats.epoch = epoch;
    stats.lr = options.learning_rate * run.lr_scale;
    task.SetLearningRate(stats.lr);
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(task.TrainEpoch(epoch, &stats));
    stats.seconds = absl::ToDoubleSeconds(absl::Now() - start);
    result.train_seconds += stats.seconds;
    total_samples += stats.samples;
    ASSIGN_OR_RETURN(EvalResult valid, task.Evaluate(SplitPart::kValid));
    const bool improved = RecordValidation(&run, epoch, valid.sampled.Ndcg(10), options.lr_decay);
    if (improved) result.valid = valid;
    JsonObject line = EpochMetrics(valid, options.model, stats, improved);
    line.Set("seed", static_cast<int64_t>(options.seed)).Set("eval_seed", static_cast<int64_t>(options.eval_seed));
    DGSR_LOG(INFO) << "epoch " << line.Dump();
    RETURN_IF_ERROR(AppendMetricsLine(options.log_path, line));
    RETURN_IF_ERROR(ck->Commit(
        run, improved, [&](const std::string& path) { return task.SaveNetwork(path); },
        [&](const std::string& path) { return task.SaveOptimizer(path); }));
  }
  if (run.best_epoch < 0) return absl::FailedPreconditionError("no epoch was trained");
  RETURN_IF_ERROR(task.LoadBest(ck->best_path()));
  result.best_epoch = run.best_epoch + 1;
  // A resumed run whose best epoch was committed by an earlier process measured it there.
  if (result.valid.sampled.count() == 0) {
    ASSIGN_OR_RETURN(result.valid, task.Evaluate(SplitPart::kValid));
  }
  ASSIGN_OR_RETURN(result.test, task.Evaluate(SplitPart::kTest));
  result.samples_per_second = total_samples / std::max(result.train_seconds, 1e-9);
  return result;
}

}  // namespace dgsr::trainer
