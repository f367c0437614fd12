// ScoringModel: one interface over every network the trainer exports (DGSR in any preset, and the
// SASRec+ baseline), so that the server and `dgsr recommend` serve whichever artifact they are
// given. Scoring runs in two stages, split so that the graph's read lock is held only while the
// inputs are gathered:
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ScoringModel> model, LoadScoringModel(path, torch::kCPU));
//   std::unique_ptr<PreparedInputs> in;
//   {
//     auto view = graph.Read();                       // shared lock: sampling only
//     in = model->Prepare(view, queries);
//   }                                                 // lock released
//   ASSIGN_OR_RETURN(torch::Tensor rep, model->Represent(*in));      // forward pass, no lock
//   ASSIGN_OR_RETURN(torch::Tensor scores, model->ScoreAll(rep));    // [B, num_items]
//
// What each network reads from the graph for a query (user u, time t; only edges strictly before
// t): DGSR samples u's m-order sub-graph (model/sampler.h); SASRec+ reads u's max_len most recent
// items. Users the model has never seen are scored like known ones from what the graph holds (DGSR
// from the sub-graph with the all-zero user row, SASRec+ from the item sequence, which needs no
// user embedding). Items created after training (ids >= num_items()) are never scored by ScoreAll
// and score 0 in ScoreItems.
//
// Which network an artifact holds is read from the file itself (its config extra file), without
// loading it: ArtifactNetwork().
//
// Errors: libtorch exceptions never escape; every call returns a Status (NotFound / DataLoss /
// InvalidArgument on load as DgsrNetwork::Load; InvalidArgument for malformed inputs; Internal for
// a failure inside the forward pass).
// Thread-safety: const methods may run concurrently from many threads (inference only).
#ifndef DGSR_MODEL_SCORING_MODEL_H_
#define DGSR_MODEL_SCORING_MODEL_H_

#include <torch/script.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/json.h"
#include "store/temporal_graph.h"

namespace dgsr::model {

class DgsrNetwork;
class SasRecNetwork;

enum class NetworkKind { kDgsr, kSasRec };

// "dgsr" / "sasrec".
std::string_view NetworkName(NetworkKind kind);

// Which network the artifact at `path` holds, from its extra files (cheap: reads the archive's
// directory, not the tensors). NotFound (no file), DataLoss (not a TorchScript archive),
// InvalidArgument (a TorchScript file of neither kind).
[[nodiscard]] absl::StatusOr<NetworkKind> ArtifactNetwork(const std::string& path);

// One scoring query: the user, and the time whose interaction is predicted (with the number of
// the user's own events at that time that precede it: SampleRequest::ties).
struct ScoringQuery {
  store::NodeId user = 0;
  store::Timestamp before = store::kMaxTime;
  int32_t ties = 0;
  std::optional<store::Timestamp> others_before = std::nullopt;  // SampleRequest::others_before (order-only data)
};

// Model inputs gathered from the graph for a batch of queries; opaque outside the model.
class PreparedInputs {
 public:
  virtual ~PreparedInputs() = default;
  virtual int64_t num_queries() const = 0;
};

class ScoringModel {
 public:
  virtual ~ScoringModel() = default;

  virtual NetworkKind network() const = 0;
  // The id spaces of the training snapshot: users >= num_users() and items >= num_items() are
  // unknown to the model. SASRec+ has no user embedding: num_users() is 0.
  virtual int64_t num_users() const = 0;
  virtual int64_t num_items() const = 0;
  // The network's configuration and the artifact's metadata (training snapshot, metrics).
  virtual JsonObject config_json() const = 0;
  virtual const JsonObject& metadata() const = 0;
  virtual torch::Device device() const = 0;

  // Stage 1: reads the graph (the caller holds the view) and builds the model's inputs. No
  // libtorch; cannot fail.
  virtual std::unique_ptr<PreparedInputs> Prepare(const store::TemporalGraph::ReadView& graph,
                                                  std::span<const ScoringQuery> queries) const = 0;
  // Stage 2 (no graph access): one representation per query, [B, d], on device().
  [[nodiscard]] virtual absl::StatusOr<torch::Tensor> Represent(const PreparedInputs& inputs) const = 0;
  // Scores over every known item, [B, num_items()].
  [[nodiscard]] virtual absl::StatusOr<torch::Tensor> ScoreAll(const torch::Tensor& rep) const = 0;
  // Scores of given items, items [B, C] int64 -> [B, C]; unknown items score 0.
  [[nodiscard]] virtual absl::StatusOr<torch::Tensor> ScoreItems(const torch::Tensor& rep,
                                                                 const torch::Tensor& items) const = 0;
};

// Loads any artifact the trainer exports (a model.pt), on `device`.
[[nodiscard]] absl::StatusOr<std::unique_ptr<ScoringModel>> LoadScoringModel(const std::string& path,
                                                                             const torch::Device& device);

// Wraps networks that are already in memory (tests, benchmarks, the trainer).
std::unique_ptr<ScoringModel> WrapNetwork(std::shared_ptr<DgsrNetwork> network);
std::unique_ptr<ScoringModel> WrapNetwork(std::shared_ptr<SasRecNetwork> network);

}  // namespace dgsr::model

#endif  // DGSR_MODEL_SCORING_MODEL_H_
