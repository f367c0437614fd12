// Training and evaluation of DGSR (paper §4.4, §5.1-5.2) on a Split.
//
//   ASSIGN_OR_RETURN(Split split, BuildSplit(store->graph()));
//   TrainOptions opt;  opt.epochs = 10;  opt.log_path = "runs/games/metrics.jsonl";
//   ASSIGN_OR_RETURN(TrainResult r, Train(config, split, opt));
//   // r.network is the checkpoint chosen on validation; r.test the test metrics, measured once.
//
// Training: sub-graphs are sampled on the fly by worker threads (SubgraphSampler, pruned blocks)
// into a bounded queue while the main thread runs forward/backward and Adam; softmax
// cross-entropy over all items (eq. 13-14; lambda as Adam weight decay). Each epoch's shuffle and
// dropout are seeded by (seed, epoch), so a run resumed from a checkpoint continues exactly.
// Early stopping and checkpoint choice use validation NDCG@10 (sampled protocol).
#ifndef DGSR_TRAINER_TRAINER_H_
#define DGSR_TRAINER_TRAINER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "model/config.h"
#include "model/dgsr_network.h"
#include "trainer/evaluation.h"
#include "trainer/split.h"
#include "trainer/training_loop.h"

namespace dgsr::trainer {

struct TrainOptions {
  int epochs = 20;
  int patience = 3;              // Stop after this many epochs without a better validation NDCG@10.
  double lr_decay = 1;           // In (0, 1]: multiplies the learning rate after each epoch that is
                                 // not better on validation (1: constant, as the paper trains).
  uint64_t seed = 1;             // Initialisation, shuffling, dropout.
  int sampler_threads = 1;       // Threads building sub-graph blocks during training.
  int torch_threads = 0;         // libtorch intra-op threads; 0 = number of cores.
  // Data-parallel training steps: each batch is sampled as this many slices, whose forward and
  // backward run at once, one per thread; their gradients are summed in a fixed order (the same
  // update as the whole batch's, up to float rounding). Runs at the same count repeat bit for bit,
  // resumed or not. The intra-op pool gets at least this many threads. 1: the whole batch on the
  // calling thread, whose ops use torch_threads.
  int train_threads = 1;
  // How a batch is cut into slices: by equal work (each sample's sub-graph size, longest first,
  // to the least loaded slice), or, when false, into contiguous parts of equal sample count.
  bool balance_slices = true;
  int64_t max_train_samples = 0; // If > 0, train on only this many samples per epoch (smoke runs).
  std::string checkpoint_dir;    // If set: committed after each epoch, crash-safe; resumes (run_state.h).
  std::string log_path;          // JSON lines, one per epoch (appended; with a checkpoint_dir, trimmed to its committed epochs).
  EvalOptions eval;              // Validation each epoch and the final test.
  // The network's CPU kernels (model/fused_ops.h); kPortable is the benchmark's same-run reference.
  model::GatherKernels kernels = model::GatherKernels::kFused;
  // Warm start (not owned; read only while Train starts a new run): the network starts from this
  // model's weights (DgsrNetwork::WarmStartFrom) instead of a fresh initialisation. Its config
  // must equal `config` except the id spaces, which may only grow, and the learning rate, l2 and
  // batch size (CheckWarmStartConfig). The optimizer starts afresh (Adam moments zero): an
  // artifact holds no optimizer state, and the old moments describe the old data. A run resumed
  // from checkpoint_dir continues its own checkpoint and ignores this.
  model::DgsrNetwork* warm_start = nullptr;
};

// best_epoch, valid, test, train_seconds, samples_per_second: trainer/training_loop.h.
struct TrainResult : LoopResult {
  std::unique_ptr<model::DgsrNetwork> network;  // The epoch chosen on validation.
  double sampling_seconds = 0;   // Worker time spent building blocks (overlaps training).
  double wait_seconds = 0;       // Training-loop time spent waiting for a batch.
  double optimizer_seconds = 0;  // Training-loop time in the optimiser step (gradient sum excluded).
  // Data-parallel steps: per step, the slowest slice's forward-backward time minus the slices'
  // mean, summed: the time the training loop lost to unequal slices.
  double slice_imbalance_seconds = 0;
};

// The learning-rate factor of optimiser step `step` (0-based, counted over the whole run) under
// a linear warm-up of `warmup_steps` steps (config.h): (step + 1) / warmup_steps, then 1.
double WarmupFactor(int64_t step, int warmup_steps);

[[nodiscard]] absl::StatusOr<TrainResult> Train(const model::DgsrConfig& config, const Split& split,
                                                const TrainOptions& options);

// Evaluates the network on the validation or test samples of `split`.
[[nodiscard]] absl::StatusOr<EvalResult> Evaluate(model::DgsrNetwork& network, const Split& split,
                                                  SplitPart part, const EvalOptions& options);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_TRAINER_H_
