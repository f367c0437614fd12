// Recommender: top-K items for users as of a time, from a DgsrNetwork and the live graph.
// This is the scoring path the server runs (and `dgsr recommend` runs in-process).
//
//   Recommender rec(network);                          // network outlives rec
//   RecommendRequest r{.user = 17, .as_of = now, .k = 10, .exclude_seen = true};
//   ASSIGN_OR_RETURN(auto lists, rec.Recommend(graph.Read(), std::span(&r, 1)));
//
// Three modes per request: full-catalogue top-K (every item the model knows); scores restricted to
// a candidate list (`candidates` non-empty: returned in descending score, at most k); and masking
// of the user's already-seen items (exclude_seen: every item the user interacted with before
// as_of). Users the model has never seen are scored from their sub-graph with the zero user
// embedding; items created after training are never recommended from the full catalogue and
// score 0 as candidates. Ties are broken by the smaller item id.
//
// Errors: InvalidArgument for k < 1 or k > 10000 or an empty batch. Thread-safe: many threads may
// call Recommend concurrently (each call samples with its own scratch space).
#ifndef DGSR_MODEL_RECOMMENDER_H_
#define DGSR_MODEL_RECOMMENDER_H_

#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "model/dgsr_network.h"

namespace dgsr::model {

struct RecommendRequest {
  store::NodeId user = 0;
  store::Timestamp as_of = store::kMaxTime;  // Only interactions strictly before this are used.
  int k = 10;
  bool exclude_seen = true;
  std::vector<store::NodeId> candidates;  // Empty: the full catalogue.
};

struct ScoredItem {
  store::NodeId item;
  float score;
};

class Recommender {
 public:
  explicit Recommender(DgsrNetwork* network) : network_(network) {}

  [[nodiscard]] absl::StatusOr<std::vector<std::vector<ScoredItem>>> Recommend(
      const store::TemporalGraph::ReadView& graph, std::span<const RecommendRequest> requests) const;

 private:
  DgsrNetwork* network_;
};

}  // namespace dgsr::model

#endif  // DGSR_MODEL_RECOMMENDER_H_
