// Recommender: top-K items for users as of a time, from any ScoringModel (model/scoring_model.h)
// and the live graph. This is the scoring path the server runs, and `dgsr recommend` runs
// in-process.
//
//   Recommender rec(model.get());                       // the model outlives rec
//   RecommendRequest r;
//   r.user = 17;
//   r.as_of = now;
//   RecommendTimings t;
//   ASSIGN_OR_RETURN(auto lists, rec.Recommend(store.graph(), std::span(&r, 1), &t));
//
// Locking: Recommend takes the graph's read lock only while it gathers the model's inputs and
// each user's seen items (stage "sample"); the forward pass and the top-K run with no lock held,
// so a slow forward pass never stalls a writer. Every request of one call reads the same
// consistent view.
//
// Per request: full-catalogue top-K over every item the model knows, or only the `candidates`
// (scored with ScoringModel::ScoreItems, never the whole catalogue; returned in descending score,
// at most k); `excluded` items and, with exclude_seen, every item the user interacted with before
// as_of are never returned. Users the model has never seen are scored from what the graph holds
// (see ScoringModel); items created after training are never recommended from the full catalogue
// and score 0 as candidates. Ties are broken by the smaller item id.
//
// Errors: InvalidArgument for k < 1 or k > kMaxK, or an empty batch; the model's errors as they
// come. Thread-safe: many threads may call Recommend concurrently.
#ifndef DGSR_MODEL_RECOMMENDER_H_
#define DGSR_MODEL_RECOMMENDER_H_

#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "model/scoring_model.h"
#include "store/temporal_graph.h"

namespace dgsr::model {

struct RecommendRequest {
  store::NodeId user = 0;
  store::Timestamp as_of = store::kMaxTime;  // Only interactions strictly before this are used.
  int k = 10;
  bool exclude_seen = true;
  std::vector<store::NodeId> candidates;  // Empty: the full catalogue.
  std::vector<store::NodeId> excluded;    // Never returned (a deny-list).
};

struct ScoredItem {
  store::NodeId item;
  float score;
};

// Wall time of each stage of one Recommend call, in seconds.
struct RecommendTimings {
  double sample = 0;   // under the read lock: model inputs and seen items
  double forward = 0;  // representations and scores
  double top_k = 0;    // masking and selection
};

class Recommender {
 public:
  static constexpr int kMaxK = 10000;

  explicit Recommender(const ScoringModel* model) : model_(model) {}

  [[nodiscard]] absl::StatusOr<std::vector<std::vector<ScoredItem>>> Recommend(
      const store::TemporalGraph& graph, std::span<const RecommendRequest> requests,
      RecommendTimings* timings = nullptr) const;

  const ScoringModel& model() const { return *model_; }

 private:
  const ScoringModel* model_;
};

}  // namespace dgsr::model

#endif  // DGSR_MODEL_RECOMMENDER_H_
