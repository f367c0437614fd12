#include "server/model_manager.h"

#include <algorithm>
#include <chrono>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "model/model_dir.h"

namespace dgsr::server {

struct ModelManager::Model {
  ModelSource source;
  std::vector<std::shared_ptr<const Servable>> loaded;  // newest first
  std::set<int64_t> rejected;                           // versions that failed; never retried
  std::string last_error;

  int64_t ServingVersion() const {
    if (source.pinned_version > 0) {
      for (const auto& s : loaded) if (s->version == source.pinned_version) return s->version;
    }
    return loaded.empty() ? 0 : loaded.front()->version;
  }
};

ModelManager::ModelManager(const ModelManagerOptions& options) : options_(options) {}

ModelManager::~ModelManager() { StopWatching(); }

absl::StatusOr<std::unique_ptr<ModelManager>> ModelManager::Create(const ModelManagerOptions& options) {
  if (options.store == nullptr) return absl::InvalidArgumentError("ModelManager needs a store");
  if (options.models.empty()) return absl::InvalidArgumentError("no model to serve (--model_dir or --models)");
  if (options.versions_to_keep < 1) return absl::InvalidArgumentError("versions_to_keep must be at least 1");
  std::unique_ptr<ModelManager> manager(new ModelManager(options));
  {
    absl::MutexLock lock(&manager->mu_);
    for (const ModelSource& source : options.models) {
      if (source.name.empty()) return absl::InvalidArgumentError("a model needs a non-empty name");
      if (manager->models_.count(source.name)) {
        return absl::InvalidArgumentError(absl::StrCat("model name '", source.name, "' is given twice"));
      }
      auto m = std::make_unique<Model>();
      m->source = source;
      manager->models_.emplace(source.name, std::move(m));
    }
    manager->default_model_ = options.default_model.empty() ? options.models.front().name : options.default_model;
    if (!manager->models_.count(manager->default_model_)) {
      return absl::InvalidArgumentError(absl::StrCat("default model '", manager->default_model_, "' is not configured"));
    }
  }
  manager->Poll();
  for (const ModelStatus& status : manager->Status()) {
    if (status.loaded.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model '", status.source.name, "' has no loadable version in ", status.source.base_path,
          status.last_error.empty() ? "" : ": ", status.last_error));
    }
  }
  return manager;
}

absl::StatusOr<std::shared_ptr<const Servable>> ModelManager::Get(std::string_view name, int64_t version) const {
  if (name.empty()) name = default_model_;
  absl::MutexLock lock(&mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return absl::NotFoundError(absl::StrCat("no model named '", std::string(name), "'"));
  const Model& m = *it->second;
  if (version == 0) version = m.ServingVersion();
  for (const auto& s : m.loaded) {
    if (s->version == version) return s;
  }
  std::string loaded;
  for (const auto& s : m.loaded) absl::StrAppend(&loaded, loaded.empty() ? "" : ", ", s->version);
  return absl::NotFoundError(absl::StrCat("model '", std::string(name), "' has no loaded version ", version, " (loaded: ",
                                          loaded.empty() ? "none" : loaded, ")"));
}

absl::Status ModelManager::CheckCompatible(const model::ScoringModel& model) const {
  const store::StoreInfo info = options_.store->info();
  if (model.num_items() > info.num_items || model.num_users() > info.num_users) {
    return absl::FailedPreconditionError(absl::StrCat(
        "incompatible with the store: the model knows ", model.num_users(), " users and ", model.num_items(),
        " items, the store only ", info.num_users, " and ", info.num_items, " (trained on another store?)"));
  }
  if (auto id = model.metadata().GetString("store_id"); id && !id->empty() && *id != info.store_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("incompatible with the store: trained on store ", *id, ", serving store ", info.store_id));
  }
  return absl::OkStatus();
}

absl::Status ModelManager::WarmUp(const Servable& servable) const {
  const store::StoreInfo info = options_.store->info();
  if (info.num_users == 0) return absl::OkStatus();
  for (int size : options_.warmup_batch_sizes) {
    std::vector<model::RecommendRequest> requests;
    for (int r = 0; r < size; ++r) {
      model::RecommendRequest req;
      req.user = static_cast<store::NodeId>(r % info.num_users);
      req.k = 10;
      requests.push_back(std::move(req));
    }
    RETURN_IF_ERROR(servable.recommender.Recommend(options_.store->graph(), requests).status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Servable>> ModelManager::LoadVersion(const ModelSource& source,
                                                                           int64_t version) const {
  const auto start = std::chrono::steady_clock::now();
  auto servable = std::make_shared<Servable>();
  servable->name = source.name;
  servable->version = version;
  servable->path = model::VersionDir(source.base_path, version) + "/model.pt";
  ASSIGN_OR_RETURN(servable->model, model::LoadScoringModel(servable->path, options_.device));
  servable->recommender = model::Recommender(servable->model.get());
  RETURN_IF_ERROR(CheckCompatible(*servable->model));
  absl::Status warm = WarmUp(*servable);
  if (!warm.ok()) return absl::FailedPreconditionError(absl::StrCat("warm-up failed: ", warm.message()));
  servable->loaded_at = absl::Now();
  servable->load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return servable;
}

std::vector<LoadEvent> ModelManager::PollModel(Model& m) {
  // The policy: the newest versions_to_keep versions that load (a rejected version is skipped
  // and the next older one is tried, so a broken newest version never leaves a model without a
  // servable one), plus the pinned version.
  const std::vector<int64_t> present = model::ListVersions(m.source.base_path);
  std::vector<std::shared_ptr<const Servable>> current;
  {
    absl::MutexLock lock(&mu_);
    current = m.loaded;
  }
  std::vector<LoadEvent> events;
  std::vector<std::shared_ptr<const Servable>> next;
  // Returns the servable for version v: already loaded, or loaded now (nullptr if rejected).
  auto acquire = [&](int64_t v) -> std::shared_ptr<const Servable> {
    auto have = std::find_if(current.begin(), current.end(), [&](const auto& s) { return s->version == v; });
    if (have != current.end()) return *have;
    if (m.rejected.count(v)) return nullptr;
    // Load without holding mu_: requests keep being served by the current versions meanwhile.
    auto loaded = LoadVersion(m.source, v);
    LoadEvent event{m.source.name, v, loaded.ok(), loaded.ok() ? "" : loaded.status().ToString(),
                    loaded.ok() ? (*loaded)->load_seconds : 0};
    std::shared_ptr<const Servable> result;
    if (loaded.ok()) {
      DGSR_LOG(INFO) << "model version loaded" << Kv("model", m.source.name) << Kv("version", v)
                     << Kv("network", model::NetworkName((*loaded)->model->network()))
                     << Kv("seconds", event.seconds);
      result = *std::move(loaded);
    } else {
      DGSR_LOG(ERROR) << "model version rejected; the previous version keeps serving" << Kv("model", m.source.name)
                      << Kv("version", v) << Kv("error", event.error);
      m.rejected.insert(v);
      absl::MutexLock lock(&mu_);
      m.last_error = absl::StrCat("version ", v, ": ", event.error);
    }
    if (options_.on_load_event) options_.on_load_event(event);
    events.push_back(std::move(event));
    return result;
  };
  for (auto it = present.rbegin(); it != present.rend() && static_cast<int>(next.size()) < options_.versions_to_keep;
       ++it) {
    if (auto s = acquire(*it)) next.push_back(std::move(s));
  }
  const int64_t pinned = m.source.pinned_version;
  if (pinned > 0 && std::find(present.begin(), present.end(), pinned) != present.end() &&
      std::none_of(next.begin(), next.end(), [&](const auto& s) { return s->version == pinned; })) {
    if (auto s = acquire(pinned)) next.push_back(std::move(s));
  }
  // A version deleted from disk keeps serving until something else loads: never drop the last
  // servable version.
  if (next.empty()) next = current;
  std::sort(next.begin(), next.end(), [](const auto& a, const auto& b) { return a->version > b->version; });
  {
    absl::MutexLock lock(&mu_);
    m.loaded = std::move(next);
  }
  return events;
}

std::vector<LoadEvent> ModelManager::Poll() {
  absl::MutexLock poll_lock(&poll_mu_);
  std::vector<Model*> models;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, m] : models_) models.push_back(m.get());
  }
  std::vector<LoadEvent> events;
  for (Model* m : models) {
    auto e = PollModel(*m);
    events.insert(events.end(), e.begin(), e.end());
  }
  return events;
}

void ModelManager::StartWatching() {
  StopWatching();
  {
    absl::MutexLock lock(&watch_mu_);
    stop_watching_ = false;
  }
  watcher_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&watch_mu_);
        auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(watch_mu_) { return stop_watching_; };
        watch_mu_.AwaitWithTimeout(absl::Condition(&stop), options_.poll_interval);
        if (stop_watching_) return;
      }
      Poll();
    }
  });
}

void ModelManager::StopWatching() {
  {
    absl::MutexLock lock(&watch_mu_);
    stop_watching_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

std::vector<ModelStatus> ModelManager::Status() const {
  absl::MutexLock lock(&mu_);
  std::vector<ModelStatus> out;
  for (const auto& [name, m] : models_) {
    out.push_back({m->source, m->loaded, m->ServingVersion(), m->last_error});
  }
  return out;
}

}  // namespace dgsr::server
