// The run scaffolding shared by the trainers (trainer.h, sasrec_trainer.h): the progress of a run
// kept in its checkpoint directory, the early-stopping decision on validation NDCG@10, the
// network of the best epoch, per-epoch seeds and the metrics log. Plain C++: the trainers pass
// their libtorch save functions in, so this module needs no libtorch.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<RunCheckpoint> ck, RunCheckpoint::Open(options.checkpoint_dir, "dgsr_"));
//   RunState run = ck->state();
//   if (ck->resumed()) ... load ck->network_path() and ck->optimizer_path() ...
//   RETURN_IF_ERROR(ck->TrimMetricsLog(options.log_path));
//   for (int epoch = run.next_epoch; epoch < options.epochs; ++epoch) {
//     if (ShouldStop(run, options.patience)) break;
//     torch::manual_seed(EpochSeed(options.seed, epoch));
//     ... train one epoch (EpochStats stats), validate (EvalResult valid) ...
//     const bool improved = RecordValidation(&run, epoch, valid.sampled.Ndcg(10));
//     RETURN_IF_ERROR(AppendMetricsLine(options.log_path, EpochMetrics(valid, "", stats, improved)));
//     RETURN_IF_ERROR(ck->Commit(run, improved, save_network, save_optimizer));
//   }
//   ... load ck->best_path() ...
//
// Crash safety: a checkpoint directory holds state.json and the files it names, which are never
// overwritten: net-<N>.pt and optimizer-<N>.pt after N epochs, best-<E>.pt for the best epoch E.
// A commit writes and fsyncs the new files, then replaces state.json atomically (the commit
// point), then deletes the files no state names. A process killed at any moment therefore leaves
// the previous epoch's state with every file it names, or the new one; resuming continues from
// it exactly. last.pt and best.pt are hard links to the committed files, for people and tools
// (`dgsr eval --artifact=RUN/checkpoint/best.pt`). Directories written before this layout (no
// "layout" key; last.pt, optimizer.pt and best.pt as plain files) are read and continued. One
// process at a time: a second run on the same directory is refused while the first holds its
// RunCheckpoint (the trainers hold it until they return).
//
// Thread-compatible: nothing here holds shared state; one run uses its own RunState and
// directories.
#ifndef DGSR_TRAINER_RUN_STATE_H_
#define DGSR_TRAINER_RUN_STATE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/file_util.h"
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

// Reads <checkpoint_dir>/state.json; a missing key takes RunState's default. NotFound if the file
// does not exist, InvalidArgument if it is not a flat JSON object, other codes for read errors.
[[nodiscard]] absl::StatusOr<RunState> LoadRunState(const std::string& checkpoint_dir);

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

// A warm start continues a model trained on an earlier snapshot: its config (`stored`) and the
// one requested must agree on every field (the architecture, sampler and regularisation; train
// with the flags the model was trained with) except the id-space sizes `grows`, which may only
// grow (the new snapshot has the users and items since), and the training-run fields `free`
// (for example the learning rate). InvalidArgument naming the first field otherwise.
[[nodiscard]] absl::Status CheckWarmStartConfig(const JsonObject& stored, const JsonObject& requested,
                                                const std::vector<std::string>& grows,
                                                const std::vector<std::string>& free);

// The seed of an epoch's shuffle and dropout, so that a resumed run continues exactly.
uint64_t EpochSeed(uint64_t seed, int epoch);

// What a training epoch measured, for its metrics line.
struct EpochStats {
  int epoch = 0;           // 0-based; the line records epoch + 1.
  double loss_sum = 0;     // Sum over the epoch's samples of their loss.
  int64_t samples = 0;     // Samples (targets) trained on.
  double seconds = 0;      // Optimisation time, validation excluded.
  double lr = 0;           // The learning rate the epoch trained with (under warm-up: at its last step).
};

// One line of the metrics log: the validation metrics ("valid_*"), then "model" if `model` is
// not empty, "epoch" (1-based), "train_loss", "train_seconds", "samples_per_s", "lr",
// "valid_seconds" and "improved", in that order.
JsonObject EpochMetrics(const EvalResult& valid, const std::string& model, const EpochStats& stats,
                        bool improved);

// Appends line.Dump() and a newline to the JSON-lines file `path` by rewriting it atomically;
// an unreadable or missing file starts empty. Does nothing if `path` is empty.
[[nodiscard]] absl::Status AppendMetricsLine(const std::string& path, const JsonObject& line);

// A run's checkpoint directory (see the top of this file), or, without one, a private directory
// that keeps only the best epoch's network and is removed with this object.
class RunCheckpoint {
 public:
  using SaveFn = std::function<absl::Status(const std::string& path)>;

  // Uses `checkpoint_dir` if not empty (created if missing; its committed state is loaded if it
  // has one), else <tmp>/<temp_prefix><pid>_<unique number>. A checkpoint directory is locked
  // (flock on <dir>/LOCK) until this object is destroyed or the process dies: FailedPrecondition
  // if another RunCheckpoint holds it. Errors: as LoadRunState, and DataLoss when state.json
  // names a file that is missing.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RunCheckpoint>> Open(const std::string& checkpoint_dir,
                                                                          const std::string& temp_prefix);
  // Removes the directory and everything in it if it is the private one; errors are ignored.
  ~RunCheckpoint();
  RunCheckpoint(const RunCheckpoint&) = delete;
  RunCheckpoint& operator=(const RunCheckpoint&) = delete;

  const std::string& dir() const { return dir_; }
  // True if Open found a committed state to continue.
  bool resumed() const { return resumed_; }
  // The last committed state (RunState{} before the first commit of a new run).
  const RunState& state() const { return state_; }
  // The files of the committed state: the network after state().next_epoch epochs and its
  // optimizer (a persistent directory only), and the best epoch's network (once an epoch ran).
  std::string network_path() const;
  std::string optimizer_path() const;
  std::string best_path() const;

  // Commits the epoch that produced `state`: saves the network to a new best file if `improved`,
  // then (a persistent directory only) the network and optimizer to new files, fsyncs them,
  // replaces state.json, refreshes last.pt / best.pt and deletes unreferenced files. Returns the
  // first error of a save function or of the file system. An error before state.json is replaced
  // leaves the committed state unchanged; one after it (refreshing last.pt / best.pt) is returned
  // with the new state already committed.
  [[nodiscard]] absl::Status Commit(const RunState& state, bool improved, const SaveFn& save_network,
                                    const SaveFn& save_optimizer);

  // Drops the lines of the JSON-lines metrics log at `log_path` whose "epoch" was never committed
  // (a run killed between logging an epoch and committing it), so that the log matches the run
  // that continues. Does nothing if `log_path` is empty, the file does not exist or the directory
  // is the private one.
  [[nodiscard]] absl::Status TrimMetricsLog(const std::string& log_path) const;

 private:
  RunCheckpoint() = default;
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // Points last.pt / best.pt at the committed files (a persistent directory) and deletes the
  // files of ours that the committed state does not name.
  [[nodiscard]] absl::Status Tidy();

  std::string dir_;
  bool owned_ = false;    // The private temporary directory: nothing persists, removed by the destructor.
  bool resumed_ = false;
  bool legacy_ = false;   // Files named last.pt / optimizer.pt / best.pt (before the "layout" key).
  std::optional<FileLock> lock_;  // The flock on <dir>/LOCK (persistent directories only).
  RunState state_;
};

}  // namespace dgsr::trainer

#endif  // DGSR_TRAINER_RUN_STATE_H_
