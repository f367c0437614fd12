// ModelManager: the model lifecycle, in the TensorFlow Serving manner. Each named model is a
// versioned base directory (model/model_dir.h) that the manager watches; the newest version
// serves unless the operator pins one. A new version is loaded, checked against the store's id
// spaces, and warmed with real requests before it replaces the old one (availability-preserving:
// the old version serves until the new one is ready). Requests hold a shared_ptr to the Servable
// they started on, so a version being replaced stays alive until its last request finishes.
//
//   ModelManagerOptions options;
//   options.models = {{.name = "games", .base_path = "/models/games"}};
//   options.store = store.get();
//   ASSIGN_OR_RETURN(auto manager, ModelManager::Create(options));   // loads and warms
//   manager->StartWatching();                                          // polls base paths
//   ASSIGN_OR_RETURN(std::shared_ptr<const Servable> s, manager->Get("games", /*version=*/0));
//   s->recommender.Recommend(...);
//
// A version that fails to load, is incompatible with the store, or fails its warm-up is rejected:
// it never serves, the previous version keeps serving, the failure is logged and counted
// (LoadEvents), and the manager does not retry that version (export a new one).
//
// Compatibility with the store: a model's id spaces must be prefixes of the store's (its
// num_users/num_items no larger than the store's), and an artifact that records the store it was
// trained from ("store_id" metadata, written by `dgsr train`) must come from this store (a
// snapshot keeps its source's id).
//
// Status codes: Create: InvalidArgument (bad options), or the first model's load error when a
// model has no loadable version. Get: NotFound (unknown model, or a version not loaded).
// Thread-safe.
#ifndef DGSR_SERVER_MODEL_MANAGER_H_
#define DGSR_SERVER_MODEL_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "model/recommender.h"
#include "model/scoring_model.h"
#include "store/graph_store.h"

namespace dgsr::server {

// One loaded, warmed, immutable model version.
struct Servable {
  std::string name;
  int64_t version = 0;
  std::string path;  // its model.pt
  std::unique_ptr<model::ScoringModel> model;
  model::Recommender recommender{nullptr};  // over `model`
  absl::Time loaded_at;
  double load_seconds = 0;  // load + check + warm-up
};

// What happened to one version (for logs, metrics and GetModelInfo).
struct LoadEvent {
  std::string model;
  int64_t version = 0;
  bool ok = false;
  std::string error;  // when !ok
  double seconds = 0;
};

struct ModelSource {
  std::string name;       // used in requests (ModelSpec.name) and metrics labels
  std::string base_path;  // the versioned directory
  int64_t pinned_version = 0;  // 0: the newest loaded version serves
};

struct ModelManagerOptions {
  // The models to serve; at least one. Names must be unique and non-empty.
  std::vector<ModelSource> models;
  // Requests without a model name go here; empty = the first model.
  std::string default_model;
  // The store the models must fit (id spaces, store id) and whose graph warms them up. Required.
  const store::GraphStore* store = nullptr;
  torch::Device device = torch::kCPU;
  // How many versions stay loaded per model (requests may name any of them): the newest ones
  // that load (a rejected version is skipped for the next older one), and the pinned version.
  int versions_to_keep = 1;
  // Base-path polling period for StartWatching().
  absl::Duration poll_interval = absl::Seconds(1);
  // Warm-up: batches of these sizes over the store's first users run before a version serves.
  std::vector<int> warmup_batch_sizes = {1, 8, 32};
  // Sees every load event (loaded or rejected), from Create's first pass on. Optional.
  std::function<void(const LoadEvent&)> on_load_event;
};

struct ModelStatus {
  ModelSource source;
  std::vector<std::shared_ptr<const Servable>> loaded;  // newest first
  int64_t serving_version = 0;
  std::string last_error;  // the last rejected version's error, or empty
};

class ModelManager {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ModelManager>> Create(const ModelManagerOptions& options);
  ~ModelManager();  // stops watching
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // The servable for `name` (empty: the default model) at `version` (0: the serving version).
  [[nodiscard]] absl::StatusOr<std::shared_ptr<const Servable>> Get(std::string_view name, int64_t version) const;

  // Scans every base path once and loads what the policy wants (synchronously). Returns the load
  // events of this pass (empty when nothing changed).
  std::vector<LoadEvent> Poll();

  // Polls every poll_interval on a background thread until the manager is destroyed or
  // StopWatching() is called.
  void StartWatching();
  void StopWatching();

  std::vector<ModelStatus> Status() const;
  const std::string& default_model() const { return default_model_; }

 private:
  struct Model;
  explicit ModelManager(const ModelManagerOptions& options);
  absl::StatusOr<std::shared_ptr<const Servable>> LoadVersion(const ModelSource& source, int64_t version) const;
  absl::Status CheckCompatible(const model::ScoringModel& model) const;
  absl::Status WarmUp(const Servable& servable) const;
  std::vector<LoadEvent> PollModel(Model& model);

  const ModelManagerOptions options_;
  std::string default_model_;
  absl::Mutex poll_mu_;  // one Poll at a time
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Model>, std::less<>> models_ ABSL_GUARDED_BY(mu_);

  absl::Mutex watch_mu_;
  bool stop_watching_ ABSL_GUARDED_BY(watch_mu_) = false;
  std::thread watcher_;
};

}  // namespace dgsr::server

#endif  // DGSR_SERVER_MODEL_MANAGER_H_
