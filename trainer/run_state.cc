#include "trainer/run_state.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <variant>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/status_macros.h"

namespace dgsr::trainer {
namespace {

namespace fs = std::filesystem;

constexpr int kLayout = 2;  // state.json's "layout": files named by epoch (run_state.h).

std::string StatePath(const std::string& checkpoint_dir) { return checkpoint_dir + "/state.json"; }
std::string NetworkName(int epochs) { return absl::StrCat("net-", epochs, ".pt"); }
std::string OptimizerName(int epochs) { return absl::StrCat("optimizer-", epochs, ".pt"); }
std::string BestName(int best_epoch) { return absl::StrCat("best-", best_epoch + 1, ".pt"); }

// Writes `path` through `save` into "<path>.tmp", fsyncs it and renames it over `path`.
absl::Status SaveDurably(const std::string& path, const RunCheckpoint::SaveFn& save) {
  const std::string tmp = path + ".tmp";
  RETURN_IF_ERROR(save(tmp));
  RETURN_IF_ERROR(SyncFile(tmp));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

// Makes `link` name the same contents as `target`: a hard link where the file system has them,
// a durable copy otherwise; replaces `link` atomically.
absl::Status LinkAtomic(const std::string& target, const std::string& link) {
  const std::string tmp = link + ".tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(target, tmp, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(target, tmp, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot link or copy ", target, ": ", ec.message()));
    RETURN_IF_ERROR(SyncFile(tmp));
  }
  fs::rename(tmp, link, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<RunState> ParseRunState(const JsonObject& json, const std::string& checkpoint_dir) {
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

// state.json's contents: ParseRunState's inverse, plus the layout.
JsonObject StateJson(const RunState& state) {
  JsonObject json;
  json.Set("next_epoch", state.next_epoch).Set("best_epoch", state.best_epoch);
  json.Set("best_valid_ndcg@10", state.best_ndcg).Set("bad_epochs", state.bad_epochs);
  json.Set("lr_scale", state.lr_scale).Set("layout", kLayout);
  return json;
}

absl::StatusOr<JsonObject> ReadStateJson(const std::string& checkpoint_dir) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(StatePath(checkpoint_dir)));
  return JsonObject::Parse(text);
}

}  // namespace

absl::StatusOr<RunState> LoadRunState(const std::string& checkpoint_dir) {
  ASSIGN_OR_RETURN(JsonObject json, ReadStateJson(checkpoint_dir));
  return ParseRunState(json, checkpoint_dir);
}

absl::StatusOr<std::unique_ptr<RunCheckpoint>> RunCheckpoint::Open(const std::string& checkpoint_dir,
                                                                   const std::string& temp_prefix) {
  std::unique_ptr<RunCheckpoint> ck(new RunCheckpoint());
  ck->owned_ = checkpoint_dir.empty();
  // The object's address tells apart the runs of one process that overlap in time.
  ck->dir_ = ck->owned_ ? absl::StrCat(fs::temp_directory_path().string(), "/", temp_prefix, ::getpid(), "_",
                                       reinterpret_cast<uintptr_t>(ck.get()))
                        : checkpoint_dir;
  RETURN_IF_ERROR(MakeDirs(ck->dir_));
  if (ck->owned_) return ck;
  const std::string lock = ck->Path("LOCK");
  absl::StatusOr<FileLock> held = FileLock::Acquire(lock, /*wait=*/false);
  if (absl::IsUnavailable(held.status())) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint ", ck->dir_, " is in use by another training process"));
  }
  if (!held.ok()) return held.status();
  ck->lock_.emplace(*std::move(held));
  if (!fs::exists(StatePath(ck->dir_))) return ck;
  ASSIGN_OR_RETURN(JsonObject json, ReadStateJson(ck->dir_));
  ASSIGN_OR_RETURN(ck->state_, ParseRunState(json, ck->dir_));
  ck->legacy_ = !json.Has("layout");
  ck->resumed_ = true;
  for (const std::string& path : {ck->network_path(), ck->optimizer_path(), ck->best_path()}) {
    if (!fs::exists(path)) {
      return absl::DataLossError(absl::StrCat("checkpoint ", ck->dir_, ": state.json names ", path,
                                              ", which is missing; use a new --run_dir"));
    }
  }
  // A run killed after its last commit but before refreshing last.pt / best.pt: finish that now.
  if (!ck->legacy_) RETURN_IF_ERROR(ck->Tidy());
  return ck;
}

RunCheckpoint::~RunCheckpoint() {
  if (!owned_) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string RunCheckpoint::network_path() const {
  return Path(legacy_ ? "last.pt" : NetworkName(state_.next_epoch));
}

std::string RunCheckpoint::optimizer_path() const {
  return Path(legacy_ ? "optimizer.pt" : OptimizerName(state_.next_epoch));
}

std::string RunCheckpoint::best_path() const { return Path(legacy_ ? "best.pt" : BestName(state_.best_epoch)); }

absl::Status RunCheckpoint::Commit(const RunState& state, bool improved, const SaveFn& save_network,
                                   const SaveFn& save_optimizer) {
  const std::string best = Path(BestName(state.best_epoch));
  if (owned_) {
    if (improved) RETURN_IF_ERROR(SaveDurably(best, save_network));
  } else {
    const std::string network = Path(NetworkName(state.next_epoch));
    RETURN_IF_ERROR(SaveDurably(network, save_network));
    RETURN_IF_ERROR(SaveDurably(Path(OptimizerName(state.next_epoch)), save_optimizer));
    if (improved) RETURN_IF_ERROR(LinkAtomic(network, best));
  }
  if (!improved && best != best_path() && !fs::exists(best)) {
    RETURN_IF_ERROR(LinkAtomic(best_path(), best));  // The best epoch of a legacy directory, renamed.
  }
  if (!owned_) {
    RETURN_IF_ERROR(SyncDir(dir_));
    RETURN_IF_ERROR(WriteFileAtomic(StatePath(dir_), StateJson(state).Dump()));  // The commit point.
  }
  state_ = state;
  legacy_ = false;
  return Tidy();
}

absl::Status RunCheckpoint::Tidy() {
  if (!owned_) {
    RETURN_IF_ERROR(LinkAtomic(network_path(), Path("last.pt")));
    RETURN_IF_ERROR(LinkAtomic(best_path(), Path("best.pt")));
  }
  // Delete what the committed state no longer names (and what a killed commit left behind).
  const std::set<std::string> keep = {NetworkName(state_.next_epoch), OptimizerName(state_.next_epoch),
                                      BestName(state_.best_epoch)};
  std::error_code ec;
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const bool ours = name.find(".tmp") != std::string::npos || name == "optimizer.pt" ||
                      ((name.starts_with("net-") || name.starts_with("optimizer-") || name.starts_with("best-")) &&
                       name.ends_with(".pt"));
    std::error_code ignored;  // A file that cannot be deleted now is deleted by a later commit.
    if (ours && !keep.contains(name)) fs::remove(it->path(), ignored);
  }
  return absl::OkStatus();
}

absl::Status RunCheckpoint::TrimMetricsLog(const std::string& log_path) const {
  if (owned_ || log_path.empty() || !fs::exists(log_path)) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string text, ReadFile(log_path));
  std::string kept;
  bool dropped = false;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StatusOr<JsonObject> json = JsonObject::Parse(std::string(line));
    const std::optional<double> epoch = json.ok() ? json->GetNumber("epoch") : std::nullopt;
    if (epoch.has_value() && *epoch > state_.next_epoch) {
      dropped = true;
      continue;
    }
    absl::StrAppend(&kept, line, "\n");
  }
  return dropped ? WriteFileAtomic(log_path, kept) : absl::OkStatus();
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

namespace {
std::string Show(const JsonObject::Value& value) {
  return std::visit(
      [](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) return v;
        else if constexpr (std::is_same_v<T, bool>) return std::string(v ? "true" : "false");
        else return absl::StrCat(v);
      },
      value);
}
}  // namespace

absl::Status CheckWarmStartConfig(const JsonObject& stored, const JsonObject& requested,
                                  const std::vector<std::string>& grows, const std::vector<std::string>& free) {
  auto in = [](const std::vector<std::string>& keys, const std::string& key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
  };
  std::map<std::string, JsonObject::Value> want(requested.entries().begin(), requested.entries().end());
  for (const auto& [key, value] : stored.entries()) {
    auto it = want.find(key);
    if (it == want.end()) {
      return absl::InvalidArgumentError(absl::StrCat("warm start: the model's config has a field '", key,
                                                     "' this version does not know; train from scratch"));
    }
    if (in(grows, key)) {
      const std::optional<double> before = stored.GetNumber(key), after = requested.GetNumber(key);
      if (!before || !after || *after < *before) {
        return absl::InvalidArgumentError(absl::StrCat("warm start: '", key, "' would shrink from ",
                                                       before.value_or(-1), " to ", after.value_or(-1),
                                                       "; the snapshot must be of the store the model was trained on, "
                                                       "and not older"));
      }
    } else if (!in(free, key) && !(it->second == value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "warm start: the model was trained with another '", key, "' (", Show(value), " against ", Show(it->second),
          " requested); pass the model flags it was trained with, or train from scratch"));
    }
    want.erase(it);
  }
  if (!want.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("warm start: the model's config has no field '",
                                                   want.begin()->first, "'; train from scratch"));
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

}  // namespace dgsr::trainer
