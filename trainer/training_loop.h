// The epoch loop both trainers run (DGSR: trainer.h, SASRec+: sasrec_trainer.h): checkpoint and
// resume, per-epoch seeds and learning rate, validation, early stopping, the crash-safe commit,
// the best epoch reloaded, and the test measured once on it. What differs between networks (how
// a network is built, resumed or warm-started, one epoch of optimisation, evaluation, saving) sits
// behind TrainingTask.
//
//   class MyTask : public TrainingTask { ... };
//   MyTask task(config, split, options);
//   LoopOptions loop;  loop.epochs = 20;  loop.patience = 3;  loop.learning_rate = 1e-3;
//   ASSIGN_OR_RETURN(LoopResult r, RunTrainingLoop(task, loop));
//   // The task now holds the best epoch's network; r.valid and r.test are its metrics.
//
// Thread-compatible: one loop per task; the task is used from the calling thread only.
#ifndef DGSR_TRAINER_TRAINING_LOOP_H_
#define DGSR_TRAINER_TRAINING_LOOP_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/json.h"
#include "trainer/evaluation.h"
#include "trainer/run_state.h"

namespace dgsr::trainer {

// The network-specific half of a training run. RunTrainingLoop calls Start or Resume once, then
// per epoch SetLearningRate, TrainEpoch, Evaluate(kValid) and the two savers, then LoadBest and
// Evaluate(kTest).
class TrainingTask {
 public:
  virtual ~TrainingTask() = default;

  // Builds the network and its optimizer for a new run: freshly initialised or warm-started.
  [[nodiscard]] virtual absl::Status Start() = 0;
  // Builds them from a committed checkpoint: the network and optimizer files of its last epoch.
  // InvalidArgument if the checkpoint was made with another model config (CheckResumedConfig).
  [[nodiscard]] virtual absl::Status Resume(const std::string& network_path, const std::string& optimizer_path,
                                            const std::string& checkpoint_dir) = 0;
  // The learning rate of the following epoch (the configured one times the decay so far).
  virtual void SetLearningRate(double lr) = 0;
  // One epoch of optimisation (torch's seed is already set for it); fills stats->loss_sum and
  // stats->samples. The progress bar is the task's.
  [[nodiscard]] virtual absl::Status TrainEpoch(int epoch, EpochStats* stats) = 0;
  // The current network on the validation or test samples.
  [[nodiscard]] virtual absl::StatusOr<EvalResult> Evaluate(SplitPart part) = 0;
  [[nodiscard]] virtual absl::Status SaveNetwork(const std::string& path) = 0;
  [[nodiscard]] virtual absl::Status SaveOptimizer(const std::string& path) = 0;
  // Replaces the current network by the one saved at `path` (the best epoch), for testing and
  // for the caller to take.
  [[nodiscard]] virtual absl::Status LoadBest(const std::string& path) = 0;
};

struct LoopOptions {
  std::string model;             // The metrics log's "model" ("" for DGSR, "sasrec"), also in log lines.
  int epochs = 20;
  int patience = 3;              // Stop after this many epochs without a better validation NDCG@10.
  double lr_decay = 1;           // In (0, 1]: learning-rate factor after each epoch that is not better.
  double learning_rate = 1e-3;   // The configured rate (before decay).
  uint64_t seed = 1;             // Per-epoch torch seeds derive from it (EpochSeed).
  uint64_t eval_seed = 0;        // Recorded in the metrics log.
  std::string checkpoint_dir;    // run_state.h; empty: a private directory keeping only the best epoch.
  std::string temp_prefix = "dgsr_run_";  // Of that private directory.
  std::string log_path;          // JSON lines, one per epoch (run_state.h, AppendMetricsLine).
};

struct LoopResult {
  int best_epoch = 0;            // 1-based
  EvalResult valid;              // At best_epoch.
  EvalResult test;               // Measured once, on the best epoch's network.
  double train_seconds = 0;      // Optimisation only (validation excluded), over this run's epochs.
  double samples_per_second = 0; // Training samples per second of train_seconds.
};

// The loop's options from a trainer's (TrainOptions, SasRecTrainOptions: the same field names).
template <typename TrainerOptions>
LoopOptions MakeLoopOptions(const TrainerOptions& o, double learning_rate, std::string model, std::string temp_prefix) {
  LoopOptions loop;
  loop.model = std::move(model);
  loop.epochs = o.epochs;
  loop.patience = o.patience;
  loop.lr_decay = o.lr_decay;
  loop.learning_rate = learning_rate;
  loop.seed = o.seed;
  loop.eval_seed = o.eval.seed;
  loop.checkpoint_dir = o.checkpoint_dir;
  loop.temp_prefix = std::move(temp_prefix);
  loop.log_path = o.log_path;
  return loop;
}

// Runs (or, from options.checkpoint_dir, resumes) training until options.epochs or early
// stopping, then leaves the best epoch's network in `task`. InvalidArgument for a bad lr_decay;
// FailedPrecondition if no epoch was trained; otherwise the first error of the task or of the
// checkpoint.
[[nodiscard]] absl::StatusOr<LoopResult> RunTrainingLoop(TrainingTask& task, const LoopOptions& options);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_TRAINING_LOOP_H_
