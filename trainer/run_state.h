// The run scaffolding shared by the trainers (trainer.h, sasrec_trainer.h): the progress of a run
// kept in its checkpoint directory, the early-stopping decision on validation NDCG@10, the
// directory that holds the best epoch's network, per-epoch seeds and the metrics log. Plain C++:
// the trainers pass their libtorch save functions in, so this module needs no libtorch.
//
//   RunState run;
//   if (HasRunState(options.checkpoint_dir)) {
//     ASSIGN_OR_RETURN(run, LoadRunState(options.checkpoint_dir));
//     ... load LastNetworkPath(dir) and OptimizerPath(dir) ...
//   }
//   ASSIGN_OR_RETURN(std::unique_ptr<BestCheckpointDir> best,
//                    BestCheckpointDir::Open(options.checkpoint_dir, "dgsr_best_"));
//   for (int epoch = run.next_epoch; epoch < options.epochs; ++epoch) {
//     if (ShouldStop(run, options.patience)) break;
//     torch::manual_seed(EpochSeed(options.seed, epoch));
//     ... train one epoch (EpochStats stats), validate (EvalResult valid) ...
//     const bool improved = RecordValidation(&run, epoch, valid.sampled.Ndcg(10));
//     if (improved) ... save the network to best->best_path() ...
//     RETURN_IF_ERROR(AppendMetricsLine(options.log_path, EpochMetrics(valid, "", stats, improved)));
//     if (!options.checkpoint_dir.empty()) {
//       RETURN_IF_ERROR(SaveCheckpoint(options.checkpoint_dir, run, save_network, save_optimizer));
//     }
//   }
//
// A checkpoint directory holds last.pt (the network after epoch next_epoch - 1), optimizer.pt
// (its optimizer state), state.json (RunState) and best.pt (the network at best_epoch). Each file
// is replaced by a rename and state.json is written last, but the files are not replaced as one
// unit: a crash inside SaveCheckpoint can leave last.pt one epoch ahead of state.json.
//
// Thread-compatible: nothing here holds shared state; one run uses its own RunState and
// directories.
#ifndef DGSR_TRAINER_RUN_STATE_H_
#define DGSR_TRAINER_RUN_STATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/json.h"
#include "trainer/evaluation.h"

namespace dgsr::trainer {

// The progress of a run that early stopping and resume depend on (<checkpoint_dir>/state.json,
// keys "next_epoch", "best_epoch", "best_valid_ndcg@10", "bad_epochs", "lr_scale"). Epochs are
// 0-based.
struct RunState {
  int next_epoch = 0;      // The epoch a resumed run starts with.
  int best_epoch = -1;     // The epoch with the best validation NDCG@10; -1 before any epoch.
  double best_ndcg = -1;   // Its validation NDCG@10.
  int bad_epochs = 0;      // Epochs since best_epoch without a better validation NDCG@10.
  double lr_scale = 1;     // The configured learning rate times this is the one in use (lr_decay).
};

// The files of a checkpoint directory.
std::string LastNetworkPath(const std::string& checkpoint_dir);  // <dir>/last.pt
std::string OptimizerPath(const std::string& checkpoint_dir);    // <dir>/optimizer.pt

// True if `checkpoint_dir` is set and holds a state.json, i.e. there is a run to resume.
bool HasRunState(const std::string& checkpoint_dir);

// Reads <checkpoint_dir>/state.json; a missing key takes RunState's default. NotFound if the file
// does not exist, InvalidArgument if it is not a flat JSON object, other codes for read errors.
[[nodiscard]] absl::StatusOr<RunState> LoadRunState(const std::string& checkpoint_dir);

// Writes <checkpoint_dir>/state.json atomically (common/file_util.h).
[[nodiscard]] absl::Status SaveRunState(const std::string& checkpoint_dir, const RunState& state);

// Writes a whole checkpoint: creates `checkpoint_dir` if needed, then last.pt through
// save_network(path), optimizer.pt through save_optimizer(path) (each to "<file>.tmp", renamed
// over the file), then state.json. Returns the first error of a save function, a rename (Internal)
// or a write.
[[nodiscard]] absl::Status SaveCheckpoint(const std::string& checkpoint_dir, const RunState& state,
                                          const std::function<absl::Status(const std::string&)>& save_network,
                                          const std::function<absl::Status(const std::string&)>& save_optimizer);

// Early stopping: true once some epoch was best and `patience` epochs since then were not better.
bool ShouldStop(const RunState& state, int patience);

// Records that `epoch` finished with validation NDCG@10 `ndcg`: it becomes the best epoch if
// strictly better than best_ndcg (bad_epochs restarts), otherwise bad_epochs grows and lr_scale
// is multiplied by `lr_decay` (learning-rate decay on a plateau; 1 keeps the rate constant, as
// the paper trains); next_epoch becomes epoch + 1. Returns whether `epoch` is the new best.
bool RecordValidation(RunState* state, int epoch, double ndcg, double lr_decay = 1);

// InvalidArgument unless lr_decay is in (0, 1].
[[nodiscard]] absl::Status CheckLrDecay(double lr_decay);

// A resumed run must continue the run it resumes: InvalidArgument naming the first field where
// the model config stored in the checkpoint differs from the one requested (for example a
// different --dim or --feat_dropout), which would otherwise be ignored silently.
[[nodiscard]] absl::Status CheckResumedConfig(const JsonObject& stored, const JsonObject& requested,
                                              const std::string& checkpoint_dir);

// The seed of an epoch's shuffle and dropout, so that a resumed run continues exactly.
uint64_t EpochSeed(uint64_t seed, int epoch);

// What a training epoch measured, for its metrics line.
struct EpochStats {
  int epoch = 0;           // 0-based; the line records epoch + 1.
  double loss_sum = 0;     // Sum over the epoch's samples of their loss.
  int64_t samples = 0;     // Samples (targets) trained on.
  double seconds = 0;      // Optimisation time, validation excluded.
  double lr = 0;           // The learning rate the epoch trained with.
};

// One line of the metrics log: the validation metrics ("valid_*"), then "model" if `model` is
// not empty, "epoch" (1-based), "train_loss", "train_seconds", "samples_per_s", "lr",
// "valid_seconds" and "improved", in that order.
JsonObject EpochMetrics(const EvalResult& valid, const std::string& model, const EpochStats& stats,
                        bool improved);

// Appends line.Dump() and a newline to the JSON-lines file `path` by rewriting it atomically;
// an unreadable or missing file starts empty. Does nothing if `path` is empty.
[[nodiscard]] absl::Status AppendMetricsLine(const std::string& path, const JsonObject& line);

// The directory that holds best.pt: the checkpoint directory if there is one, otherwise a private
// directory under the system temporary directory, removed with this object.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<BestCheckpointDir> best,
//                    BestCheckpointDir::Open(options.checkpoint_dir, "dgsr_best_"));
//   RETURN_IF_ERROR(net->Save(best->best_path(), JsonObject()));
class BestCheckpointDir {
 public:
  // Uses `checkpoint_dir` if not empty, else <tmp>/<temp_prefix><pid>_<unique number>; creates it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BestCheckpointDir>> Open(
      const std::string& checkpoint_dir, const std::string& temp_prefix);

  // Removes the directory and everything in it if it is the private one; errors are ignored.
  ~BestCheckpointDir();

  BestCheckpointDir(const BestCheckpointDir&) = delete;
  BestCheckpointDir& operator=(const BestCheckpointDir&) = delete;

  const std::string& dir() const { return dir_; }
  std::string best_path() const { return dir_ + "/best.pt"; }

 private:
  BestCheckpointDir() = default;

  std::string dir_;
  bool owned_ = false;  // The private temporary directory: removed by the destructor.
};

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_RUN_STATE_H_
