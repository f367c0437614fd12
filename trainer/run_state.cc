#include "trainer/run_state.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <system_error>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace dgsr::trainer {
namespace {

std::string StatePath(const std::string& checkpoint_dir) { return checkpoint_dir + "/state.json"; }

// Writes `path` through `save` into "<path>.tmp" and renames it over `path`.
absl::Status SaveByRename(const std::string& path, const std::function<absl::Status(const std::string&)>& save) {
  RETURN_IF_ERROR(save(path + ".tmp"));
  std::error_code ec;
  std::filesystem::rename(path + ".tmp", path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", path, ".tmp: ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::string LastNetworkPath(const std::string& checkpoint_dir) { return checkpoint_dir + "/last.pt"; }

std::string OptimizerPath(const std::string& checkpoint_dir) { return checkpoint_dir + "/optimizer.pt"; }

bool HasRunState(const std::string& checkpoint_dir) {
  return !checkpoint_dir.empty() && std::filesystem::exists(StatePath(checkpoint_dir));
}

absl::StatusOr<RunState> LoadRunState(const std::string& checkpoint_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(StatePath(checkpoint_dir)));
  ASSIGN_OR_RETURN(JsonObject json, JsonObject::Parse(text));
  RunState state;
  state.next_epoch = static_cast<int>(json.GetNumber("next_epoch").value_or(0));
  state.best_epoch = static_cast<int>(json.GetNumber("best_epoch").value_or(-1));
  state.best_ndcg = json.GetNumber("best_valid_ndcg@10").value_or(-1);
  state.bad_epochs = static_cast<int>(json.GetNumber("bad_epochs").value_or(0));
  state.lr_scale = json.GetNumber("lr_scale").value_or(1);
  if (!(state.lr_scale > 0 && state.lr_scale <= 1)) {
    return absl::InvalidArgumentError(absl::StrCat("state.json in ", checkpoint_dir, ": lr_scale must be in (0, 1]"));
  }
  return state;
}

absl::Status SaveRunState(const std::string& checkpoint_dir, const RunState& state) {
  JsonObject json;
  json.Set("next_epoch", state.next_epoch).Set("best_epoch", state.best_epoch);
  json.Set("best_valid_ndcg@10", state.best_ndcg).Set("bad_epochs", state.bad_epochs);
  json.Set("lr_scale", state.lr_scale);
  return WriteFileAtomic(StatePath(checkpoint_dir), json.Dump());
}

absl::Status SaveCheckpoint(const std::string& checkpoint_dir, const RunState& state,
                            const std::function<absl::Status(const std::string&)>& save_network,
                            const std::function<absl::Status(const std::string&)>& save_optimizer) {
  RETURN_IF_ERROR(MakeDirs(checkpoint_dir));
  RETURN_IF_ERROR(SaveByRename(LastNetworkPath(checkpoint_dir), save_network));
  RETURN_IF_ERROR(SaveByRename(OptimizerPath(checkpoint_dir), save_optimizer));
  return SaveRunState(checkpoint_dir, state);
}

bool ShouldStop(const RunState& state, int patience) {
  return state.best_epoch >= 0 && state.bad_epochs >= patience;
}

bool RecordValidation(RunState* state, int epoch, double ndcg, double lr_decay) {
  const bool improved = ndcg > state->best_ndcg;
  if (improved) {
    state->best_ndcg = ndcg;
    state->best_epoch = epoch;
    state->bad_epochs = 0;
  } else {
    ++state->bad_epochs;
    state->lr_scale *= lr_decay;
  }
  state->next_epoch = epoch + 1;
  return improved;
}

absl::Status CheckLrDecay(double lr_decay) {
  if (lr_decay > 0 && lr_decay <= 1) return absl::OkStatus();
  return absl::InvalidArgumentError("lr_decay must be in (0, 1]");
}

absl::Status CheckResumedConfig(const JsonObject& stored, const JsonObject& requested,
                                const std::string& checkpoint_dir) {
  std::map<std::string, JsonObject::Value> want(requested.entries().begin(), requested.entries().end());
  for (const auto& [key, value] : stored.entries()) {
    auto it = want.find(key);
    if (it != want.end() && it->second == value) {
      want.erase(it);
      continue;
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the checkpoint in ", checkpoint_dir, " was trained with another config (field '", key,
        "'); resume with the flags it was started with, or use a new --run_dir"));
  }
  if (!want.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("the checkpoint in ", checkpoint_dir, " has no field '",
                                                   want.begin()->first, "'; use a new --run_dir"));
  }
  return absl::OkStatus();
}

uint64_t EpochSeed(uint64_t seed, int epoch) { return seed * 1000003ull + static_cast<uint64_t>(epoch); }

JsonObject EpochMetrics(const EvalResult& valid, const std::string& model, const EpochStats& stats,
                        bool improved) {
  JsonObject line = valid.ToJson("valid_");
  if (!model.empty()) line.Set("model", model);
  line.Set("epoch", stats.epoch + 1).Set("train_loss", stats.loss_sum / std::max<int64_t>(stats.samples, 1));
  line.Set("train_seconds", stats.seconds).Set("samples_per_s", stats.samples / std::max(stats.seconds, 1e-9));
  line.Set("lr", stats.lr);
  line.Set("valid_seconds", valid.seconds).Set("improved", improved);
  return line;
}

absl::Status AppendMetricsLine(const std::string& path, const JsonObject& line) {
  if (path.empty()) return absl::OkStatus();
  auto old = ReadFile(path);
  return WriteFileAtomic(path, (old.ok() ? *old : std::string()) + line.Dump() + "\n");
}

absl::StatusOr<std::unique_ptr<BestCheckpointDir>> BestCheckpointDir::Open(const std::string& checkpoint_dir,
                                                                           const std::string& temp_prefix) {
  std::unique_ptr<BestCheckpointDir> best(new BestCheckpointDir());
  // The object's address tells apart the runs of one process that overlap in time.
  best->dir_ = checkpoint_dir.empty()
                   ? absl::StrCat(std::filesystem::temp_directory_path().string(), "/", temp_prefix, ::getpid(),
                                  "_", reinterpret_cast<uintptr_t>(best.get()))
                   : checkpoint_dir;
  RETURN_IF_ERROR(MakeDirs(best->dir_));
  best->owned_ = checkpoint_dir.empty();
  return best;
}

BestCheckpointDir::~BestCheckpointDir() {
  if (!owned_) return;
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace dgsr::trainer
