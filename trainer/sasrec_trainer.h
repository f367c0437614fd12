// Training and evaluation of the SASRec+ baseline (model/sasrec_network.h) in the same harness as
// DGSR: the same Split, the same validation and test samples, negatives and metrics
// (trainer/evaluation.h), the same early stopping and checkpoint choice on validation.
//
//   ASSIGN_OR_RETURN(Split split, BuildSplit(store->graph()));
//   model::SasRecConfig config;  config.num_items = split.num_items;
//   SasRecTrainOptions opt;  opt.log_path = "runs/games-sasrec/metrics.jsonl";
//   ASSIGN_OR_RETURN(SasRecTrainResult r, TrainSasRec(config, split, opt));
//   // r.network is the epoch chosen on validation NDCG@10; r.test is measured once, on it.
//
// Training data: each user's sequence in split.train_graph (which holds no validation or test
// interaction), in windows of at most max_len + 1 items (SasRecTrainingSequences). The inputs are
// all but a window's last item, the targets all but its first, and the loss is softmax
// cross-entropy over all items at every position (SASRec+, Klenitskiy & Vasilev 2023), averaged
// over positions. The targets are exactly DGSR's training samples (split.train): a history longer
// than max_len + 1 is not cut to its last max_len targets, as SASRec's code does, but split into
// windows, so both models learn from the same data. "Samples" below are target positions, so
// samples/s compares directly with DGSR's. A batch is batch_size windows. Each epoch's window shuffle
// and dropout are seeded by (seed, epoch), so a run resumed from a checkpoint continues exactly.
//
// Evaluation: for a sample (user, before), the model reads the user's max_len most recent items
// strictly before `before` in the graph the harness passes (valid_graph or the full graph) and
// scores all items from the state after the newest one.
//
// Not thread-safe: one training run per process at a time (libtorch settings are process-wide).
#ifndef DGSR_TRAINER_SASREC_TRAINER_H_
#define DGSR_TRAINER_SASREC_TRAINER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "model/sasrec_network.h"
#include "trainer/evaluation.h"
#include "trainer/split.h"
#include "trainer/training_loop.h"

namespace dgsr::trainer {

struct SasRecTrainOptions {
  int epochs = 100;
  int patience = 5;              // Stop after this many epochs without a better validation NDCG@10.
  double lr_decay = 1;           // In (0, 1]: multiplies the learning rate after each epoch that is
                                 // not better on validation (1: constant).
  uint64_t seed = 1;             // Initialisation, shuffling, dropout.
  int torch_threads = 0;         // libtorch intra-op threads; 0 = number of cores.
  // Threads of the BLAS under libtorch; 0 = leave as is. SASRec's attention is many small matrix
  // products, each of which a multi-threaded BLIS forks and joins: on the shared 2-core machine,
  // with OpenMP's default spinning wait, that ran ~10x slower (Games: 220 vs 2,100 samples/s);
  // with passive waiting (the dgsr binary sets it) one or two BLAS threads are about even.
  // BLIS takes it only if TrainSasRec runs before anything in the process called BLAS (it reads
  // BLIS_NUM_THREADS once).
  int blas_threads = 1;
  int64_t max_train_users = 0;   // If > 0, train on only this many (shuffled) windows per epoch (one per user unless its history exceeds max_len + 1).
  std::string checkpoint_dir;    // If set: committed after each epoch, crash-safe; resumes (run_state.h).
  std::string log_path;          // JSON lines, one per epoch (appended; with a checkpoint_dir, trimmed to its committed epochs).
  EvalOptions eval;              // Validation each epoch and the final test.
  // Warm start (not owned; read only while a new run starts): as TrainOptions::warm_start
  // (trainer.h); the item rows it knows are copied (SasRecNetwork::WarmStartFrom), the optimizer
  // starts afresh.
  model::SasRecNetwork* warm_start = nullptr;
};

// best_epoch, valid, test, train_seconds, samples_per_second (target positions): training_loop.h.
struct SasRecTrainResult : LoopResult {
  std::unique_ptr<model::SasRecNetwork> network;  // The epoch chosen on validation.
};

// InvalidArgument: invalid config, config.num_items != split.num_items, or no user with at least
// two training items. FailedPrecondition if no epoch ran (epochs = 0). Checkpoint files that
// cannot be read: DataLoss.
[[nodiscard]] absl::StatusOr<SasRecTrainResult> TrainSasRec(const model::SasRecConfig& config,
                                                            const Split& split,
                                                            const SasRecTrainOptions& options);

// Every user's training items as windows of at most max_len + 1 items, the last ending at the
// user's last training item and each earlier one ending where the next begins: every training
// target appears in exactly one window, after up to max_len items of its own history.
std::vector<std::vector<int64_t>> SasRecTrainingSequences(const Split& split, int max_len);

// Evaluates the network on the validation or test samples of `split` (trainer/evaluation.h).
[[nodiscard]] absl::StatusOr<EvalResult> EvaluateSasRec(model::SasRecNetwork& network, const Split& split,
                                                        SplitPart part, const EvalOptions& options);

// Publishes the network as a new version of `model_dir` (trainer/export.h, atomic), recording
// "model": "sasrec" and its config as "config.<field>" in the metadata.
[[nodiscard]] absl::StatusOr<std::string> ExportSasRec(const std::string& model_dir,
                                                       model::SasRecNetwork& network, JsonObject metadata);

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_SASREC_TRAINER_H_
